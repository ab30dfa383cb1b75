#!/usr/bin/env bash
# Create .venv with Python 3.12 and install recsys (idempotent).
#   ./scripts/bootstrap.sh           recsys with its dev tools (tests, lint): make test
#   ./scripts/bootstrap.sh runtime   only what runs (no mypy, selenium, ...): make run
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for candidate in "${PYTHON:-}" python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12 \
                   "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  # pyenv installs 3.12 without putting it on PATH when another version is global.
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12' | tail -1 || true)
    if [ -n "$version" ]; then
      echo "$(pyenv root)/versions/$version/bin/python3.12"
      return 0
    fi
  fi
  return 1
}

PY=$(find_python) || { echo "Python 3.12 not found: install it or set PYTHON=/path/to/python3.12" >&2; exit 1; }
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
  rm -rf .venv
  "$PY" -m venv .venv
fi
kind=${1:-dev}
case "$kind" in
  dev) target='.[dev]' ;;
  runtime) target='.' ;;
  *) echo "usage: $0 [dev|runtime]" >&2; exit 2 ;;
esac
hash=$(sha256sum pyproject.toml | cut -c1-16)
stamp=.venv/.installed-$hash-$kind
# A dev install holds everything a runtime one does.
if [ ! -f "$stamp" ] && ! { [ "$kind" = runtime ] && [ -f ".venv/.installed-$hash-dev" ]; }; then
  # Minutes on a fresh machine: pip's own progress is shown, not hidden.
  echo "bootstrap: installing recsys ($kind dependencies) into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --progress-bar on -e "$target"
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "bootstrap: done" >&2
fi

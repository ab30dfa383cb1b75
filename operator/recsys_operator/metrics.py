"""The operator's own Prometheus metrics, served on ``RECSYS_OPERATOR_METRICS_PORT``."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram, start_http_server

RECONCILES: Final = Counter(
    "recsys_operator_reconciles_total",
    "Create/update/resume handler runs per result (failure: some child could not be written).",
    ["result"],
)
RECONCILE_SECONDS: Final = Histogram(
    "recsys_operator_reconcile_duration_seconds",
    "Duration of one pass over a RecSystem's desired state.",
)
CHILD_WRITES: Final = Counter(
    "recsys_operator_child_writes_total",
    "Child objects written, by kind and outcome (created, patched, deleted, failed).",
    ["kind", "outcome"],
)
TICK_ERRORS: Final = Counter(
    "recsys_operator_scheduler_tick_errors_total",
    "Per-instance scheduler ticks that failed (retried at the next tick).",
)


def serve(port: int) -> None:
    """Serve /metrics on ``port`` in a background thread; 0 disables it."""
    if port:
        start_http_server(port)

"""Prometheus metrics shared by all components (one registry per process)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "recsys_http_requests_total",
    "HTTP requests by service, route, method and status.",
    ["service", "route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "recsys_http_request_duration_seconds",
    "HTTP request latency by service and route.",
    ["service", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

HTTP_CONNECTIONS_CLOSED = Counter(
    "recsys_http_connections_closed_total",
    "Connections the server closed to protect itself: headers not complete within "
    "RECSYS_HTTP_HEADER_TIMEOUT, or the longest idle one beyond RECSYS_HTTP_MAX_CONNECTIONS.",
    ["reason"],
)
OVERLOAD_REJECTIONS = Counter(
    "recsys_http_overload_rejections_total",
    "Requests refused with 503 because the concurrency limit and wait queue were full.",
)
EVENTS_PUBLISHED = Counter(
    "recsys_events_published_total", "Events confirmed by the broker (collector)."
)
EVENTS_REJECTED = Counter(
    "recsys_events_rejected_total", "Events refused by the collector.", ["reason"]
)
EVENTS_CONSUMED = Counter("recsys_events_consumed_total", "Events received from the queue.")
EVENTS_ACKED = Counter(
    "recsys_events_acked_total", "Events acknowledged after being durably stored."
)
EVENTS_DUPLICATE = Counter(
    "recsys_events_duplicate_total", "Redelivered events skipped because already stored."
)
INGEST_STORAGE_ERRORS = Counter(
    "recsys_ingest_storage_errors_total",
    "Failed writes to the interaction log (disk full, I/O error); the batch stays "
    "unacknowledged and is retried.",
)
INGEST_STORAGE_BLOCKED = Gauge(
    "recsys_ingest_storage_blocked",
    "1 while ingestion is held up by a failing interaction log (nothing is acknowledged).",
)
QUEUE_DEPTH = Gauge("recsys_queue_depth", "Messages waiting in the interaction queue.")
TRAINING_RUNS = Counter("recsys_training_runs_total", "Training cycles by outcome.", ["outcome"])
TRAINING_DURATION = Histogram(
    "recsys_training_duration_seconds",
    "Duration of a training cycle (read log, fit, publish).",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)
LAST_TRAINING_SUCCESS = Gauge(
    "recsys_last_training_success_timestamp_seconds", "When the last model was published."
)
MODEL_VERSION = Gauge(
    "recsys_model_version_info", "Currently published model (value 1).", ["version", "model"]
)
MODEL_HOLDOUT = Gauge("recsys_model_holdout", "Holdout quality of the current model.", ["metric"])
# The api's copy is what alerts watch: training Jobs finish before anyone scrapes them.
MODEL_TRAINED = Gauge(
    "recsys_model_trained_timestamp_seconds",
    "When the model this process serves (api) or last published (trainer) was trained; "
    "0 while there is none.",
)
RECOMMENDATIONS = Counter(
    "recsys_recommendations_total", "Recommended items by where they came from.", ["source"]
)
PREFETCH = Counter(
    "recsys_recs_prefetch_total",
    "/recs answers from the user's prefetched list (hit), a precomputed variant for a user "
    "with no history (new_user) or a fresh ranking (miss).",
    ["result"],
)


def record_model(version: str, family: str, metrics: dict[str, float], trained_at: float) -> None:
    """Point the model gauges at the model now published (trainer) or served (api)."""
    MODEL_VERSION.clear()
    MODEL_VERSION.labels(version, family).set(1)
    MODEL_TRAINED.set(trained_at)
    for metric, value in metrics.items():
        MODEL_HOLDOUT.labels(metric).set(value)


def route_label(route: object) -> str:
    """What a request is labelled with: its route's template. path_format drops converters
    ("{user_id:path}" -> "{user_id}"): stable labels."""
    return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))


class RequestMetrics:
    """One service's requests counted and timed by (route template, method, status).

    Keeps each labelled series: ``labels()`` validates and locks on every call, three times
    the cost of ``inc()`` + ``observe()`` (measured on /interact).
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, started: float) -> None:
        """Count a request that began at ``started`` (time.perf_counter) and time it."""
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                HTTP_REQUESTS.labels(self.service, route, method, str(status)),
                HTTP_LATENCY.labels(self.service, route),
            )
        series[0].inc()
        series[1].observe(time.perf_counter() - started)

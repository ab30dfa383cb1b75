"""ServiceMonitor and PrometheusRule (Prometheus Operator CRDs), only when enabled."""

from __future__ import annotations

from recsys_operator import constants as c
from recsys_operator.builders.common import Instance, Obj, metadata
from recsys_operator.builders.trainer import nominal_interval_seconds


def build_service_monitor(inst: Instance) -> Obj | None:
    """Scrapes api and collector (port ``http``) and ingest (port ``metrics``)."""
    monitor = inst.spec.monitoring.service_monitor
    if not monitor.enabled:
        return None
    meta = metadata(inst, inst.name, "monitoring")
    meta["labels"].update(monitor.labels)
    # honorLabels keeps the services' own `service` label (api/collector) instead of
    # renaming it to exported_service.
    endpoint = {"path": "/metrics", "interval": monitor.interval, "honorLabels": True}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {c.LABEL_NAME: c.APP_NAME, c.LABEL_INSTANCE: inst.name}},
            "namespaceSelector": {"matchNames": [inst.namespace]},
            "endpoints": [{"port": "http", **endpoint}, {"port": "metrics", **endpoint}],
        },
    }


def build_prometheus_rule(inst: Instance) -> Obj | None:
    """Alerts: error rate, p95 latency, a served model older than N training intervals."""
    rule = inst.spec.monitoring.prometheus_rule
    if not rule.enabled:
        return None
    requests = "recsys_http_requests_total"
    sel = f'namespace="{inst.namespace}",job=~"{inst.name}-(api|collector)"'
    api = f'namespace="{inst.namespace}",job="{inst.name}-api"'
    trained = "recsys_model_trained_timestamp_seconds"
    interval = nominal_interval_seconds(inst.spec.training)
    stale_after = rule.missed_training_intervals * interval
    meta = metadata(inst, inst.name, "monitoring")
    meta["labels"].update(rule.labels)
    instance_labels = {"recsys": inst.name, "namespace": inst.namespace}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": {
            "groups": [
                {
                    "name": f"recsys.{inst.namespace}.{inst.name}",
                    "rules": [
                        {
                            "alert": "RecsysHighErrorRate",
                            "expr": (
                                f'sum(rate({requests}{{{sel},status=~"5.."}}[5m]))'
                                f" / clamp_min(sum(rate({requests}{{{sel}}}[5m])), 1e-9)"
                                f" > {rule.error_rate_threshold}"
                            ),
                            "for": "5m",
                            "labels": {"severity": "warning", **instance_labels},
                            "annotations": {
                                "summary": f"recsys {inst.name}: 5xx ratio above "
                                f"{rule.error_rate_threshold:.0%}",
                            },
                        },
                        {
                            "alert": "RecsysHighLatency",
                            "expr": (
                                "histogram_quantile(0.95, sum by (le) (rate("
                                f"recsys_http_request_duration_seconds_bucket{{{sel}}}[5m])))"
                                f" > {rule.latency_p95_seconds}"
                            ),
                            "for": "10m",
                            "labels": {"severity": "warning", **instance_labels},
                            "annotations": {
                                "summary": f"recsys {inst.name}: p95 latency above "
                                f"{rule.latency_p95_seconds}s",
                            },
                        },
                        {
                            # The api's gauge: training Jobs end before anyone scrapes them.
                            # 0 (no model yet) fires like an old model; absent() fires when
                            # no api is scraped at all.
                            "alert": "RecsysModelStale",
                            "expr": (
                                f"(time() - max({trained}{{{api}}}) > {stale_after})"
                                f" or absent({trained}{{{api}}})"
                            ),
                            "for": f"{interval}s",
                            "labels": {"severity": "critical", **instance_labels},
                            "annotations": {
                                "summary": f"recsys {inst.name}: the served model is older than "
                                f"{rule.missed_training_intervals} training intervals "
                                f"({stale_after}s), or no api reports one",
                            },
                        },
                    ],
                }
            ]
        },
    }

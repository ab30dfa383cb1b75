"""The instance ConfigMap: every non-secret setting of the services, incl. isolation names."""

from __future__ import annotations

from recsys_operator import constants as c
from recsys_operator.builders.common import Instance, Obj, metadata


def build_config_data(inst: Instance) -> dict[str, str]:
    """Environment for the services; per-instance key prefix and queue names isolate instances."""
    spec = inst.spec
    suffix = inst.isolation_suffix
    training = spec.training
    data = {
        "RECSYS_KEY_PREFIX": f"recsys:{suffix}:",
        "RECSYS_QUEUE": f"{c.DEFAULT_QUEUE}.{suffix}",
        "RECSYS_EXCHANGE": c.DEFAULT_EXCHANGE,
        "RECSYS_ROUTING_KEY": f"{c.DEFAULT_ROUTING_KEY}.{suffix}",
        "RECSYS_DATA_DIR": c.DATA_DIR,
        "RECSYS_API_PORT": str(c.API_PORT),
        "RECSYS_COLLECTOR_PORT": str(c.COLLECTOR_PORT),
        "RECSYS_API_HEALTH_PORT": str(c.API_PROBE_PORT),
        "RECSYS_COLLECTOR_HEALTH_PORT": str(c.COLLECTOR_PROBE_PORT),
        "RECSYS_METRICS_PORT": str(c.METRICS_PORT),
        "RECSYS_CORS_ORIGINS": spec.cors_origins,
        "RECSYS_LOG_LEVEL": spec.log_level,
        # One JSON object per line: what cluster log collectors read (as the Helm chart).
        "RECSYS_LOG_FORMAT": "json",
        # The demo page posts likes to its own host: the Ingress routes /interact there.
        "RECSYS_DEMO_COLLECTOR_ADDRESS": "/",
    }
    if training.interval_seconds is not None:
        data["RECSYS_TRAIN_INTERVAL"] = str(training.interval_seconds)
    data.update(model_settings(inst))
    return data


def model_settings(inst: Instance) -> dict[str, str]:
    """The model settings the spec names; the others keep the services' own defaults."""
    model = inst.spec.model
    given = {
        "RECSYS_MODEL": model.type,
        "RECSYS_DEFAULT_K": model.default_k,
        "RECSYS_EXPLORATION_RATE": model.exploration_rate,
        "RECSYS_LIGHTFM_COMPONENTS": model.lightfm.components,
        "RECSYS_LIGHTFM_EPOCHS": model.lightfm.epochs,
        "RECSYS_LIGHTFM_LEARNING_RATE": model.lightfm.learning_rate,
    }
    return {name: _text(value) for name, value in given.items() if value is not None}


def _text(value: str | float) -> str:
    """As Helm writes a value (Go's %v: 0.0 is "0", 0.03 "0.03"): the chart and the
    operator give the services the very same strings."""
    text = repr(value) if isinstance(value, float) else str(value)
    return text.removesuffix(".0")


def build_configmap(inst: Instance) -> Obj:
    """The ConfigMap object."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(inst, inst.config_name, "config"),
        "data": build_config_data(inst),
    }

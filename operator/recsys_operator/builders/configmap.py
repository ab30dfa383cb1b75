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
        "RECSYS_METRICS_PORT": str(c.METRICS_PORT),
        "RECSYS_DEFAULT_K": str(spec.model.default_k),
        "RECSYS_EXPLORATION_RATE": str(spec.model.exploration_rate),
        "RECSYS_MODEL": spec.model.type,
        "RECSYS_LIGHTFM_COMPONENTS": str(spec.model.lightfm.components),
        "RECSYS_LIGHTFM_EPOCHS": str(spec.model.lightfm.epochs),
        "RECSYS_LIGHTFM_LEARNING_RATE": str(spec.model.lightfm.learning_rate),
        "RECSYS_CORS_ORIGINS": spec.cors_origins,
        "RECSYS_LOG_LEVEL": spec.log_level,
        # One JSON object per line: what cluster log collectors read (as the Helm chart).
        "RECSYS_LOG_FORMAT": "json",
        # The demo page posts likes to its own host: the Ingress routes /interact there.
        "RECSYS_DEMO_COLLECTOR_ADDRESS": "/",
    }
    if training.interval_seconds is not None:
        data["RECSYS_TRAIN_INTERVAL"] = str(training.interval_seconds)
    return data


def build_configmap(inst: Instance) -> Obj:
    """The ConfigMap object."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(inst, inst.config_name, "config"),
        "data": build_config_data(inst),
    }

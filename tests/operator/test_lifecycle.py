"""Create, update, drift, delete, invalid spec: the real operator against the emulated API."""

from __future__ import annotations

import base64
from typing import Any

from tests.operator.conftest import NAMESPACE, Cluster, sample_recsystem

CR = ("recsys.io/v1alpha1", "RecSystem")
DEPLOYMENT = ("apps/v1", "Deployment")
CHILDREN = [
    ("v1", "ConfigMap", "demo-config"),
    ("v1", "Secret", "demo-admin"),
    ("apps/v1", "Deployment", "demo-api"),
    ("apps/v1", "Deployment", "demo-collector"),
    ("apps/v1", "Deployment", "demo-ingest"),
    ("v1", "Service", "demo-api"),
    ("v1", "Service", "demo-collector"),
    ("v1", "Service", "demo-ingest"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "demo-api"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "demo-collector"),
    ("policy/v1", "PodDisruptionBudget", "demo-api"),
    ("policy/v1", "PodDisruptionBudget", "demo-collector"),
    ("networking.k8s.io/v1", "Ingress", "demo"),
]

PVC = ("v1", "PersistentVolumeClaim", "demo-data")


def _condition(body: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


async def _create_demo(cluster: Cluster, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ingress", {"enabled": True, "host": "demo.local", "className": "nginx"})
    cr = await cluster.create(sample_recsystem(**spec))
    await cluster.get_eventually("networking.k8s.io/v1", "Ingress", "demo")
    return cr


async def test_create_writes_every_child_with_owner_reference(cluster: Cluster) -> None:
    cr = await _create_demo(cluster)
    uid = cr["metadata"]["uid"]
    for api_version, kind, name in CHILDREN:
        child = await cluster.get_eventually(api_version, kind, name)
        refs = child["metadata"]["ownerReferences"]
        assert refs == [
            {
                "apiVersion": "recsys.io/v1alpha1",
                "kind": "RecSystem",
                "name": "demo",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], f"{kind}/{name}"
        assert child["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo"
    # The interaction log is retained by default: no owner reference to follow.
    pvc = await cluster.get_eventually(*PVC)
    assert "ownerReferences" not in pvc["metadata"], pvc["metadata"]
    # Sub-minute interval: Jobs launched by the operator, no CronJob.
    assert await cluster.get("batch/v1", "CronJob", "demo-train") is None
    # Only the generated admin token is a plain Secret; its value is random, not empty.
    secret = await cluster.get("v1", "Secret", "demo-admin")
    assert secret is not None
    assert len(base64.b64decode(secret["data"]["token"])) >= 32


async def test_instances_are_isolated_by_prefix_and_queue(cluster: Cluster) -> None:
    await cluster.create(sample_recsystem("alpha"))
    await cluster.create(sample_recsystem("beta"))
    alpha = (await cluster.get_eventually("v1", "ConfigMap", "alpha-config"))["data"]
    beta = (await cluster.get_eventually("v1", "ConfigMap", "beta-config"))["data"]
    assert alpha["RECSYS_KEY_PREFIX"] == f"recsys:{NAMESPACE}.alpha:"
    assert alpha["RECSYS_QUEUE"] == f"user_interactions.{NAMESPACE}.alpha"
    assert alpha["RECSYS_ROUTING_KEY"] == f"user.interact.message.{NAMESPACE}.alpha"
    for key in ("RECSYS_KEY_PREFIX", "RECSYS_QUEUE", "RECSYS_ROUTING_KEY"):
        assert alpha[key] != beta[key]
    api = await cluster.get_eventually(*DEPLOYMENT, "alpha-api")
    env = {e["name"]: e for e in _container(api)["env"]}
    # Connection settings only ever come from Secrets.
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "redis-conn", "key": "url"}
    assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"] == {"name": "amqp-conn", "key": "url"}
    assert "value" not in env["RECSYS_ADMIN_TOKEN"]


async def test_update_spec_rolls_changes_out(cluster: Cluster) -> None:
    await _create_demo(cluster)
    api = await cluster.get_eventually(*DEPLOYMENT, "demo-api")
    assert _container(api)["image"] == "recsys:test"
    assert "replicas" not in api["spec"]  # the HPA owns it
    hash_before = api["spec"]["template"]["metadata"]["annotations"]["recsys.io/config-hash"]

    await cluster.patch(
        *CR,
        "demo",
        {
            "spec": {
                "image": "recsys:v2",
                "api": {"replicas": 4, "autoscaling": {"enabled": False}},
                "model": {"type": "ease", "defaultK": 20},
                "training": {"intervalSeconds": None, "schedule": "*/10 * * * *"},
            }
        },
    )

    async def rolled_out() -> dict[str, Any] | None:
        dep = await cluster.get(*DEPLOYMENT, "demo-api")
        ok = dep and _container(dep)["image"] == "recsys:v2" and dep["spec"].get("replicas") == 4
        return dep if ok else None

    api = await cluster.eventually(rolled_out, message="api rollout")
    assert (
        api["spec"]["template"]["metadata"]["annotations"]["recsys.io/config-hash"] != hash_before
    )
    config = await cluster.get("v1", "ConfigMap", "demo-config")
    assert config is not None
    assert config["data"]["RECSYS_MODEL"] == "ease"
    assert config["data"]["RECSYS_DEFAULT_K"] == "20"
    await cluster.gone_eventually("autoscaling/v2", "HorizontalPodAutoscaler", "demo-api")
    cronjob = await cluster.get_eventually("batch/v1", "CronJob", "demo-train")
    assert cronjob["spec"]["schedule"] == "*/10 * * * *"

    # Back to a sub-minute interval: the CronJob goes away.
    await cluster.patch(
        *CR, "demo", {"spec": {"training": {"schedule": None, "intervalSeconds": 20}}}
    )
    await cluster.gone_eventually("batch/v1", "CronJob", "demo-train")


async def test_drift_of_a_child_is_corrected(cluster: Cluster) -> None:
    await _create_demo(cluster)
    await cluster.get_eventually(*DEPLOYMENT, "demo-collector")
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "collector", "image": "evil"}]}}}
    }
    await cluster.patch(*DEPLOYMENT, "demo-collector", patch)

    async def restored() -> bool:
        dep = await cluster.get(*DEPLOYMENT, "demo-collector")
        return bool(dep and _container(dep)["image"] == "recsys:test" and _container(dep)["env"])

    await cluster.eventually(restored, message="collector image restored")

    await cluster.delete("v1", "Service", "demo-api")
    service = await cluster.get_eventually("v1", "Service", "demo-api")
    assert service["spec"]["ports"][0]["port"] == 5001

    await cluster.patch("v1", "ConfigMap", "demo-config", {"data": {"RECSYS_QUEUE": "shared"}})

    async def config_restored() -> bool:
        cm = await cluster.get("v1", "ConfigMap", "demo-config")
        return bool(cm and cm["data"]["RECSYS_QUEUE"] == f"user_interactions.{NAMESPACE}.demo")

    await cluster.eventually(config_restored, message="configmap restored")


async def test_delete_removes_every_child(cluster: Cluster) -> None:
    await _create_demo(cluster)
    for api_version, kind, name in CHILDREN:
        await cluster.get_eventually(api_version, kind, name)
    await cluster.delete(*CR, "demo")
    await cluster.gone_eventually(*CR, "demo")  # nothing holds it back
    for api_version, kind, name in CHILDREN:
        await cluster.gone_eventually(api_version, kind, name)
    assert await cluster.get(*PVC) is not None  # storage.retainPolicy: Retain (the default)


async def test_invalid_spec_is_reported_in_status_without_crashing(cluster: Cluster) -> None:
    bad = sample_recsystem("broken", training={"intervalSeconds": 30, "schedule": "* * * * *"})
    bad["spec"]["api"] = {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}
    await cluster.create(bad)

    async def reported() -> dict[str, Any] | None:
        body = await cluster.get(*CR, "broken")
        return _condition(body or {}, "Ready")

    ready = await cluster.eventually(reported, message="Ready condition on invalid CR")
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert "exactly one of training.schedule or training.intervalSeconds" in ready["message"]
    assert "minReplicas must be <= autoscaling.maxReplicas" in ready["message"]
    assert ready["observedGeneration"] == 1
    body = await cluster.get(*CR, "broken")
    assert body is not None and body["status"]["phase"] == "Invalid"
    assert await cluster.get(*DEPLOYMENT, "broken-api") is None

    # The operator is still alive and serves valid instances.
    await cluster.create(sample_recsystem("fine"))
    await cluster.get_eventually(*DEPLOYMENT, "fine-api")

    # Fixing the spec makes the broken one reconcile.
    await cluster.patch(
        *CR,
        "broken",
        {"spec": {"training": {"schedule": None}, "api": {"autoscaling": {"minReplicas": 1}}}},
    )
    await cluster.get_eventually(*DEPLOYMENT, "broken-api")


async def test_ready_condition_follows_deployment_availability(cluster: Cluster) -> None:
    await _create_demo(cluster)

    async def ready_status() -> str | None:
        cond = _condition(await cluster.get(*CR, "demo") or {}, "Ready")
        return cond["status"] if cond else None

    assert await cluster.eventually(ready_status) == "False"
    for component in ("api", "collector", "ingest"):
        await cluster.get_eventually(*DEPLOYMENT, f"demo-{component}")
        await cluster.patch(
            *DEPLOYMENT,
            f"demo-{component}",
            {"status": {"availableReplicas": 1, "replicas": 2}},
            "status",
        )

    async def is_ready() -> bool:
        return await ready_status() == "True"

    await cluster.eventually(is_ready, message="Ready=True")
    body = await cluster.get(*CR, "demo")
    assert body is not None
    assert body["status"]["phase"] == "Ready"
    assert body["status"]["replicas"] == 2  # the scale subresource reads this
    assert _condition(body, "Ready")["observedGeneration"] == body["metadata"]["generation"]  # type: ignore[index]

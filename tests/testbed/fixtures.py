"""The testbed: a real control plane plus real Flux and Argo CD controllers,
run as host processes from binaries that tests/testbed/build.py put in a cache.

Session-scoped pytest fixtures (exposed through tests/conftest.py):

- ``testbed_cluster``  -> Cluster: .kubeconfig, .server, .logs_dir, .check_health()
- ``testbed_git``      -> GitServer: .base_url, .root, .create_repo(name) -> clone URL
- ``testbed_flux``     -> Flux: .namespace ("flux-system"), .check_health(), .restart(name)
- ``testbed_argocd``   -> ArgoCD: .namespace ("argocd"), .check_health(), .restart(name)

The same pieces work outside pytest: ``start_cluster()``, ``start_flux()``,
``start_argocd()`` and ``GitServer`` each have a ``stop()``.

Environment:
- GITOPS_LAB_TESTBED_CACHE: where build.py put the binaries (see build.py).
- GITOPS_LAB_TESTBED_KEEP=1: leave everything running at the end of the
  session and print the kubeconfig, the pids and how to stop them.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

import yaml

try:  # imported as "testbed.fixtures" (tests/ on sys.path) or by path
    from . import build as _build
except ImportError:  # pragma: no cover
    import build as _build  # type: ignore

KEEP_ENV = "GITOPS_LAB_TESTBED_KEEP"
BUILD_HINT = "python tests/testbed/build.py"


class TestbedError(RuntimeError):
    """A testbed component failed to start, died, or a wait ran out."""

    __test__ = False  # not a test class


# --------------------------------------------------------------------------- #
# Cache
# --------------------------------------------------------------------------- #
def bin_dir() -> Path:
    return _build.cache_dir() / "bin"


def crd_dir() -> Path:
    return _build.cache_dir() / "crds"


def missing_reason() -> str | None:
    """None when the testbed can run here; otherwise why not and how to fix it."""
    ok, missing = _build.is_complete()
    if not ok:
        return (f"testbed not built (missing: {', '.join(missing)} in {_build.cache_dir()}); "
                f"build it with: {BUILD_HINT}")
    for exe in ("git", "redis-server", "openssl"):
        if not shutil.which(exe):
            return f"testbed needs '{exe}' on PATH (apt-get install -y {exe.replace('openssl', 'openssl')})"
    return None


# --------------------------------------------------------------------------- #
# Processes
# --------------------------------------------------------------------------- #
_ALL_PROCS: list["Proc"] = []
_LOG_DIRS: list[Path] = []
_PORTS_GIVEN: set[int] = set()


def _stop_leftovers_at_exit() -> None:
    """Last resort when a session ends without its fixtures' teardown (an
    interrupted run): no component outlives the Python process that started
    it, unless GITOPS_LAB_TESTBED_KEEP asks for that."""
    if os.environ.get(KEEP_ENV, "") not in ("", "0", "false", "no"):
        return
    for p in reversed(_ALL_PROCS):
        if p.alive():
            p.stop(timeout=5)


atexit.register(_stop_leftovers_at_exit)


def free_port() -> int:
    """A free TCP port on 127.0.0.1, not handed out before in this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise TestbedError("no free loopback port found")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(data.splitlines()[-lines:])


class Proc:
    """One component process, in its own process group, logging to a file."""

    def __init__(self, name: str, args: list[str], log_dir: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None):
        self.name = name
        self.args = [str(a) for a in args]
        self.log = log_dir / f"{name}.log"
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        full_env = dict(os.environ)
        full_env.update(self.env or {})
        with self.log.open("ab") as fh:
            fh.write(f"\n===== {time.strftime('%H:%M:%S')} start: {' '.join(self.args)}\n".encode())
            fh.flush()
            self.popen = subprocess.Popen(
                self.args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=full_env, cwd=self.cwd, start_new_session=True)
        _ALL_PROCS.append(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        if self.popen is None:
            raise TestbedError(f"{self.name} was never started")
        rc = self.popen.poll()
        if rc is not None:
            raise TestbedError(
                f"testbed component {self.name} (pid {self.popen.pid}) has exited with "
                f"code {rc}; log {self.log}, last lines:\n{tail(self.log)}")

    def stop(self, timeout: float = 10) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # the whole group, including any child it started, goes
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def rss(self) -> int:
        return group_rss(self.popen.pid) if self.alive() else 0

    def group_alive(self) -> bool:
        """Whether any process of this component's group is still there."""
        if self.popen is None:
            return False
        if self.popen.poll() is None:
            return True
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _group_members(pgid: int):
    """(/proc/<pid>, the fields of its stat after the command name) of each process in a group."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid:  # state, ppid, pgrp, ...
                yield d, fields
        except (OSError, ValueError, IndexError):
            continue


def group_rss(pgid: int) -> int:
    """Resident memory (bytes) of every process in a process group."""
    total = 0
    for d, _fields in _group_members(pgid):
        try:
            for line in (d / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by every process in a process group."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _d, fields in _group_members(pgid))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until(what: str, fn: Callable[[], object], timeout: float,
               health: Callable[[], None] | None = None, interval: float = 0.25):
    """Poll fn until it returns a truthy value; bounded by timeout. The health
    callable runs each round, so a dead process fails the wait at once."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        if health:
            health()
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - remembered for the message
            last = exc
        if time.monotonic() > deadline:
            raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)
        interval = min(interval * 1.5, 2.0)


def http_ok(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3, context=ctx) as r:  # noqa: S310 - loopback
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _stop_all(procs: Iterable[Proc], ports: Iterable[int] = ()) -> list[str]:
    """Stop processes (in the order given); return problems found afterwards."""
    procs = list(procs)
    for p in procs:
        p.stop()
    problems = [f"{p.name} (pid {p.pid}) still running" for p in procs if p.group_alive()]
    for port in ports:
        ok = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if port_is_free(port):
                ok = True
                break
            time.sleep(0.2)
        if not ok:
            problems.append(f"port {port} still in use")
    return problems


# --------------------------------------------------------------------------- #
# PKI
# --------------------------------------------------------------------------- #
def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise TestbedError(f"openssl {' '.join(args)} failed: {r.stderr}")


def make_pki(d: Path) -> None:
    """CA, apiserver serving cert, admin client cert, service-account key pair."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "7", "-subj", "/CN=gitops-lab-testbed-ca", cwd=d)
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    for name, subj, ext in (("apiserver", "/CN=kube-apiserver", "server.ext"),
                            ("admin", "/O=system:masters/CN=gitops-lab-testbed-admin", "client.ext")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subj, cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "7", "-extfile", ext, cwd=d)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


def write_kubeconfig(path: Path, server: str, pki: Path, namespace: str = "default") -> None:
    b64 = lambda p: base64.b64encode((pki / p).read_bytes()).decode()  # noqa: E731
    cfg = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "testbed", "cluster": {
            "server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": "testbed-admin", "user": {
            "client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")}}],
        "contexts": [{"name": "testbed", "context": {
            "cluster": "testbed", "user": "testbed-admin", "namespace": namespace}}],
        "current-context": "testbed",
    }
    path.write_text(yaml.safe_dump(cfg))
    path.chmod(0o600)


# --------------------------------------------------------------------------- #
# Cluster
# --------------------------------------------------------------------------- #
class Cluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok."""

    def __init__(self, workdir: Path, nodes: int = 1):
        self.workdir = workdir
        self.logs_dir = workdir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        _LOG_DIRS.append(self.logs_dir)
        self.pki = workdir / "pki"
        self.kubeconfig = str(workdir / "kubeconfig")
        self.nodes = nodes
        self.ports: dict[str, int] = {}
        self.procs: dict[str, Proc] = {}
        self.server = ""
        self._api = None

    # -- public API --
    def check_health(self) -> None:
        """Raise TestbedError naming the component if any process has died."""
        for p in self.procs.values():
            p.check()

    def api_client(self):
        """A kubernetes.client.ApiClient for this cluster (new each call)."""
        from kubernetes import config
        return config.new_client_from_config(config_file=self.kubeconfig)

    def stop(self) -> list[str]:
        order = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
        procs = [self.procs[n] for n in order if n in self.procs]
        return _stop_all(procs, self.ports.values())

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items()}

    def rss(self) -> dict[str, int]:
        """Resident memory in bytes per component (its whole process group)."""
        return {n: p.rss() for n, p in self.procs.items()}

    # -- start --
    def _ssl_ctx(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def start(self, timeout: float = 120) -> "Cluster":
        b = bin_dir()
        make_pki(self.pki)
        for n in ("etcd", "etcd_peer", "apiserver", "kcm", "scheduler", "kwok"):
            self.ports[n] = free_port()
        self.server = f"https://127.0.0.1:{self.ports['apiserver']}"
        write_kubeconfig(Path(self.kubeconfig), self.server, self.pki)
        kc = self.kubeconfig
        etcd_url = f"http://127.0.0.1:{self.ports['etcd']}"
        peer_url = f"http://127.0.0.1:{self.ports['etcd_peer']}"
        (self.workdir / "etcd").mkdir(mode=0o700, exist_ok=True)
        self._start("etcd", [
            b / "etcd", "--name=testbed", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=testbed={peer_url}", "--initial-cluster-state=new",
            "--unsafe-no-fsync=true", "--quota-backend-bytes=1073741824",
            "--listen-metrics-urls=", "--log-level=warn",
        ])
        wait_until("etcd /health", lambda: http_ok(f"{etcd_url}/health"), 30, self.check_health)
        pki = self.pki
        self._start("kube-apiserver", [
            b / "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            # fills kube-system/extension-apiserver-authentication, which the
            # controller-manager and scheduler read (else they log errors forever)
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # loopback addresses are not valid Endpoints of the kubernetes Service
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=1",
        ])
        ctx = self._ssl_ctx()
        wait_until("kube-apiserver /readyz", lambda: http_ok(f"{self.server}/readyz", ctx),
                   timeout, self.check_health)
        common = [f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
                  f"--authorization-kubeconfig={kc}", "--leader-elect=false",
                  "--bind-address=127.0.0.1", "--v=1"]
        self._start("kube-controller-manager", [
            b / "kube-controller-manager", *common,
            f"--secure-port={self.ports['kcm']}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--use-service-account-credentials=false",
            "--controllers=*",
        ])
        self._start("kube-scheduler", [
            b / "kube-scheduler", *common, f"--secure-port={self.ports['scheduler']}",
        ])
        self._start("kwok", [
            b / "kwok", f"--kubeconfig={kc}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--manage-nodes-with-label-selector=",
            f"--server-address=127.0.0.1:{self.ports['kwok']}",
            "--cidr=10.244.0.1/16", "--node-ip=10.0.0.1",
            "--node-lease-duration-seconds=40",
        ], env={"HOME": str(self.workdir)})  # no stray ~/.kwok config is read
        self._create_nodes()
        self._wait_ready(timeout)
        return self

    def _start(self, name: str, args: list, env: dict | None = None) -> Proc:
        p = Proc(name, args, self.logs_dir, env=env, cwd=self.workdir).start()
        self.procs[name] = p
        return p

    def _create_nodes(self) -> None:
        from kubernetes import client
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            for i in range(self.nodes):
                core.create_node({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {
                        "name": f"kwok-node-{i}",
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {"type": "kwok", "kubernetes.io/hostname": f"kwok-node-{i}",
                                   "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                    },
                    "status": {
                        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                    },
                })

    def _wait_ready(self, timeout: float) -> None:
        from kubernetes import client
        with self.api_client() as api:
            core = client.CoreV1Api(api)

            def nodes_ready():
                ready = 0
                for n in core.list_node(label_selector="type=kwok").items:
                    for c in n.status.conditions or []:
                        if c.type == "Ready" and c.status == "True":
                            ready += 1
                return ready >= self.nodes

            wait_until("kwok nodes Ready", nodes_ready, timeout, self.check_health)

            def default_sa():
                return core.read_namespaced_service_account("default", "default")

            # proves kube-controller-manager works; pods need this account
            wait_until("the default ServiceAccount (kube-controller-manager)", default_sa,
                       timeout, self.check_health)


def start_cluster(workdir: Path | None = None, nodes: int = 1, timeout: float = 120) -> Cluster:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="gitops-lab-testbed-"))
    c = Cluster(workdir, nodes)
    try:
        return c.start(timeout)
    except BaseException:
        c.stop()
        raise


# --------------------------------------------------------------------------- #
# Kubernetes helpers used by the engine fixtures
# --------------------------------------------------------------------------- #
def apply_crds(cluster: Cluster, paths: Iterable[Path], timeout: float = 60) -> list[str]:
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    names = []
    with cluster.api_client() as api:
        ext = client.ApiextensionsV1Api(api)
        for path in paths:
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                name = doc["metadata"]["name"]
                try:
                    ext.create_custom_resource_definition(doc)
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                    cur = ext.read_custom_resource_definition(name)
                    doc["metadata"]["resourceVersion"] = cur.metadata.resource_version
                    ext.replace_custom_resource_definition(name, doc)
                names.append(name)

        def established():
            for n in names:
                crd = ext.read_custom_resource_definition(n)
                if not any(c.type == "Established" and c.status == "True"
                           for c in (crd.status.conditions or [])):
                    return False
            return True

        wait_until(f"CRDs established: {', '.join(names)}", established, timeout, cluster.check_health)
    return names


def ensure_namespace(cluster: Cluster, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    with cluster.api_client() as api:
        try:
            client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise


class _Engine:
    """Common part of the Flux and Argo CD fixtures."""

    namespace = ""
    order: list[str] = []

    def __init__(self, cluster: Cluster, workdir: Path):
        self.cluster = cluster
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs_dir = cluster.logs_dir
        self.procs: dict[str, Proc] = {}
        self.ports: dict[str, int] = {}
        self._specs: dict[str, tuple[list, dict]] = {}
        self._ready: dict[str, Callable[[], object]] = {}

    def check_health(self) -> None:
        """Raise TestbedError if the cluster or any of this engine's processes died."""
        self.cluster.check_health()
        for p in self.procs.values():
            p.check()

    def _start(self, name: str, args: list, env: dict, ready: Callable[[], object] | None = None,
               timeout: float = 60) -> Proc:
        self._specs[name] = (args, env)
        if ready:
            self._ready[name] = ready
        p = Proc(name, args, self.logs_dir, env=env, cwd=self.workdir).start()
        self.procs[name] = p
        if ready:
            wait_until(f"{name} ready", ready, timeout, self.check_health)
        return p

    def restart(self, name: str, timeout: float = 60) -> None:
        """Start a component again (after a test killed it)."""
        self.procs[name].stop()
        args, env = self._specs[name]
        self._start(name, args, env, self._ready.get(name), timeout)

    def stop(self) -> list[str]:
        procs = [self.procs[n] for n in reversed(self.order) if n in self.procs]
        return _stop_all(procs, self.ports.values())

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items()}

    def rss(self) -> dict[str, int]:
        """Resident memory in bytes per component (its whole process group)."""
        return {n: p.rss() for n, p in self.procs.items()}


# --------------------------------------------------------------------------- #
# Flux
# --------------------------------------------------------------------------- #
class Flux(_Engine):
    namespace = "flux-system"
    order = ["source-controller", "kustomize-controller"]

    def start(self, timeout: float = 90) -> "Flux":
        crds = sorted((crd_dir() / "source-controller").glob("*.yaml")) + \
            sorted((crd_dir() / "kustomize-controller").glob("*.yaml"))
        apply_crds(self.cluster, crds)
        ensure_namespace(self.cluster, self.namespace)
        b = bin_dir()
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {"KUBECONFIG": self.cluster.kubeconfig, "RUNTIME_NAMESPACE": self.namespace,
               "TMPDIR": str(tmp), "HOME": str(self.workdir)}
        for n in ("storage", "sc_metrics", "sc_health", "kc_metrics", "kc_health"):
            self.ports[n] = free_port()
        storage = self.workdir / "storage"
        storage.mkdir(exist_ok=True)
        self.storage_addr = f"127.0.0.1:{self.ports['storage']}"
        common = ["--enable-leader-election=false", "--watch-all-namespaces=true",
                  "--log-level=info", "--log-encoding=json", "--events-addr="]
        self._start("source-controller", [
            b / "source-controller", *common,
            f"--storage-path={storage}",
            f"--storage-addr={self.storage_addr}",
            f"--storage-adv-addr={self.storage_addr}",
            f"--metrics-addr=127.0.0.1:{self.ports['sc_metrics']}",
            f"--health-addr=127.0.0.1:{self.ports['sc_health']}",
        ], env, ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['sc_health']}/readyz"),
            timeout=timeout)
        self._start("kustomize-controller", [
            b / "kustomize-controller", *common,
            f"--metrics-addr=127.0.0.1:{self.ports['kc_metrics']}",
            f"--health-addr=127.0.0.1:{self.ports['kc_health']}",
        ], env, ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['kc_health']}/readyz"),
            timeout=timeout)
        return self


def start_flux(cluster: Cluster, workdir: Path | None = None) -> Flux:
    f = Flux(cluster, workdir or cluster.workdir / "flux")
    try:
        return f.start()
    except BaseException:
        f.stop()
        raise


# --------------------------------------------------------------------------- #
# Argo CD
# --------------------------------------------------------------------------- #
class ArgoCD(_Engine):
    namespace = "argocd"
    order = ["redis", "argocd-repo-server", "argocd-application-controller"]

    def start(self, timeout: float = 90) -> "ArgoCD":
        apply_crds(self.cluster, sorted((crd_dir() / "argocd").glob("*.yaml")))
        ensure_namespace(self.cluster, self.namespace)
        self._seed_objects()
        b = bin_dir()
        for n in ("redis", "repo", "repo_metrics", "ctrl_metrics"):
            self.ports[n] = free_port()
        dirs = {}
        for d in ("tls", "ssh", "gpg", "gpg-source", "plugins", "tmp"):
            dirs[d] = self.workdir / d
            dirs[d].mkdir(exist_ok=True)
        self._start("redis", [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port", str(self.ports["redis"]), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
            "--dir", str(self.workdir),
        ], {}, ready=lambda: self._redis_ping(), timeout=30)
        redis_addr = f"127.0.0.1:{self.ports['redis']}"
        env = {
            "KUBECONFIG": self.cluster.kubeconfig,
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_TLS_DATA_PATH": str(dirs["tls"]),
            "ARGOCD_SSH_DATA_PATH": str(dirs["ssh"]),
            "ARGOCD_GNUPGHOME": str(dirs["gpg"]),
            "ARGOCD_GPG_DATA_PATH": str(dirs["gpg-source"]),
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_PLUGINSOCKFILEPATH": str(dirs["plugins"]),
            "TMPDIR": str(dirs["tmp"]),
            # The repo-server hands Git credentials to git through a unix socket, by default
            # /tmp/reposerver-ask-pass.sock: two testbeds on one host would take it from each
            # other ("unknown nonce") whenever a repository needs credentials.
            "ARGOCD_ASK_PASS_SOCK": str(self.workdir / "askpass.sock"),
            "HOME": str(self.workdir),
            # the repo-server runs kustomize from PATH: the one built for it first
            "PATH": f"{b}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        self._start("argocd-repo-server", [
            b / "argocd", "--loglevel=info",
            "--address=127.0.0.1", f"--port={self.ports['repo']}",
            "--metrics-address=127.0.0.1", f"--metrics-port={self.ports['repo_metrics']}",
            f"--redis={redis_addr}", "--disable-tls",
        ], dict(env, ARGOCD_BINARY_NAME="argocd-repo-server"),
            ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['repo_metrics']}/metrics"),
            timeout=timeout)
        self._start("argocd-application-controller", [
            b / "argocd", "--loglevel=info", f"--namespace={self.namespace}",
            f"--redis={redis_addr}",
            f"--repo-server=127.0.0.1:{self.ports['repo']}", "--repo-server-plaintext",
            f"--metrics-port={self.ports['ctrl_metrics']}",
            "--status-processors=4", "--operation-processors=2",
            "--app-resync=120", "--self-heal-timeout-seconds=2",
            "--hydrator-enabled=false",
        ], dict(env, ARGOCD_BINARY_NAME="argocd-application-controller",
                HOSTNAME="argocd-application-controller-0"),
            ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['ctrl_metrics']}/metrics"),
            timeout=timeout)
        return self

    def _redis_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ports["redis"]), timeout=2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _seed_objects(self) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException
        labels = {"app.kubernetes.io/part-of": "argocd"}
        ns = self.namespace
        with self.cluster.api_client() as api:
            core = client.CoreV1Api(api)
            objs = [
                (core.create_namespaced_config_map, {
                    "metadata": {"name": "argocd-cm", "labels": labels},
                    "data": {"timeout.reconciliation": "120s"}}),
                (core.create_namespaced_config_map, {
                    "metadata": {"name": "argocd-rbac-cm", "labels": labels}, "data": {}}),
                (core.create_namespaced_secret, {
                    "metadata": {"name": "argocd-secret", "labels": labels},
                    "type": "Opaque",
                    "stringData": {"server.secretkey": secrets.token_urlsafe(32)}}),
            ]
            for create, body in objs:
                try:
                    create(ns, body)
                except ApiException as exc:
                    if exc.status != 409:
                        raise
            try:
                client.CustomObjectsApi(api).create_namespaced_custom_object(
                    "argoproj.io", "v1alpha1", ns, "appprojects", {
                        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
                        "metadata": {"name": "default", "namespace": ns},
                        "spec": {
                            "sourceRepos": ["*"],
                            "destinations": [{"namespace": "*", "server": "*"}],
                            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                        }})
            except ApiException as exc:
                if exc.status != 409:
                    raise


def start_argocd(cluster: Cluster, workdir: Path | None = None) -> ArgoCD:
    a = ArgoCD(cluster, workdir or cluster.workdir / "argocd")
    try:
        return a.start()
    except BaseException:
        a.stop()
        raise


# --------------------------------------------------------------------------- #
# Git over smart HTTP
# --------------------------------------------------------------------------- #
class _GitHandler(http.server.BaseHTTPRequestHandler):
    server_version = "gitops-lab-testbed-git/1"
    root: Path = Path("/nonexistent")

    def log_message(self, fmt, *args):  # quiet; errors go to the log file
        log = getattr(self.server, "log_path", None)
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write("%s %s\n" % (self.address_string(), fmt % args))

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._body() if self.command == "POST" else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),  # type: ignore[attr-defined]
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "testbed",  # enables receive-pack (push)
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        try:
            r = subprocess.run(["git", "http-backend"], input=body, env=env,
                               capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            self.send_error(504, "git http-backend timed out")
            return
        out = r.stdout
        sep = out.find(b"\r\n\r\n")
        seplen = 4
        if sep < 0 or (out.find(b"\n\n") >= 0 and out.find(b"\n\n") < sep):
            sep, seplen = out.find(b"\n\n"), 2
        if sep < 0:
            self.log_message("http-backend failed (%s): %s", r.returncode, r.stderr.decode(errors="replace"))
            self.send_error(500, "git http-backend failed")
            return
        head, payload = out[:sep].decode("latin-1"), out[sep + seplen:]
        status, headers = 200, []
        for line in head.splitlines():
            if not line.strip():
                continue
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            else:
                headers.append((k.strip(), v.strip()))
        if r.stderr:
            self.log_message("http-backend: %s", r.stderr.decode(errors="replace").strip())
        self.send_response(status)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _cgi
    do_POST = _cgi


class _GitHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class GitServer:
    """Smart-HTTP Git server on 127.0.0.1 (git http-backend), push allowed."""

    def __init__(self, root: Path, log_path: Path | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._srv = _GitHTTPServer(("127.0.0.1", 0), _GitHandler)
        self._srv.root = self.root  # type: ignore[attr-defined]
        self._srv.log_path = log_path  # type: ignore[attr-defined]
        self.port = self._srv.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._srv.serve_forever, name="testbed-git", daemon=True)

    def start(self) -> "GitServer":
        self._thread.start()
        return self

    def create_repo(self, name: str) -> str:
        """Create an empty bare repository (default branch main); return its clone URL."""
        name = name.removesuffix(".git")
        path = self.root / f"{name}.git"
        if not path.exists():
            subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)],
                           check=True)
            subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
        return f"{self.base_url}/{name}.git"

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(10)

    def check_health(self) -> None:
        if not self._thread.is_alive():
            raise TestbedError("the testbed Git server thread is not running")


# --------------------------------------------------------------------------- #
# pytest fixtures and hooks
# --------------------------------------------------------------------------- #
import pytest  # noqa: E402

_SESSION: dict[str, object] = {}


def _keep() -> bool:
    return os.environ.get(KEEP_ENV, "") not in ("", "0", "false", "no")


def _skip_if_missing() -> None:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)


def _finish(name: str, obj, problems_fn) -> None:
    with contextlib.suppress(Exception):
        _SESSION.setdefault("rss", {}).update(obj.rss())
    if _keep():
        return
    problems = problems_fn()
    if problems:
        raise TestbedError(f"{name} teardown left things behind: {'; '.join(problems)}")


@pytest.fixture(scope="session")
def testbed_workdir() -> Iterable[Path]:
    _skip_if_missing()
    d = Path(tempfile.mkdtemp(prefix="gitops-lab-testbed-"))
    _SESSION["workdir"] = d
    yield d
    if _keep():
        return
    # keep logs/ for a look after the run; drop the data (etcd, storage, repos)
    for child in d.iterdir():
        if child.name != "logs":
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()


@pytest.fixture(scope="session")
def testbed_cluster(testbed_workdir: Path) -> Iterable[Cluster]:
    """A running control plane with kwok nodes. See Cluster."""
    c = start_cluster(testbed_workdir)
    _SESSION["cluster"] = c
    yield c
    if _keep():
        msg = (f"{KEEP_ENV} set: the testbed is left running (the Git server stopped with pytest).\n"
               f"  export KUBECONFIG={c.kubeconfig}\n  server {c.server}\n  logs {c.logs_dir}\n"
               f"  stop it with: kill -- {' '.join('-' + str(p.pid) for p in _ALL_PROCS if p.alive())}\n")
        _SESSION["keep_message"] = msg  # printed in the terminal summary
        (testbed_workdir / "KEEP.txt").write_text(msg)
        return
    _finish("testbed_cluster", c, c.stop)


@pytest.fixture(scope="session")
def testbed_git(testbed_workdir: Path) -> Iterable[GitServer]:
    """Smart-HTTP Git server on loopback. .create_repo(name) -> clone URL."""
    logs = testbed_workdir / "logs"
    logs.mkdir(exist_ok=True)
    g = GitServer(testbed_workdir / "git", log_path=logs / "git-http.log").start()
    yield g
    if not _keep():
        g.stop()


@pytest.fixture(scope="session")
def testbed_flux(testbed_cluster: Cluster) -> Iterable[Flux]:
    """Flux source-controller + kustomize-controller on the testbed cluster."""
    f = start_flux(testbed_cluster)
    yield f
    _finish("testbed_flux", f, f.stop)


@pytest.fixture(scope="session")
def testbed_argocd(testbed_cluster: Cluster) -> Iterable[ArgoCD]:
    """Argo CD redis + repo-server + application-controller on the testbed cluster."""
    a = start_argocd(testbed_cluster)
    yield a
    _finish("testbed_argocd", a, a.stop)


def log_tails(lines: int = 30) -> str:
    """The last lines of every testbed log, for a failing test's report."""
    out = []
    for d in _LOG_DIRS:
        for log in sorted(d.glob("*.log")):
            out.append(f"----- {log} (last {lines} lines) -----\n{tail(log, lines)}")
    return "\n".join(out)


def stray_processes() -> list[str]:
    return [f"{p.name} (pid {p.pid})" for p in _ALL_PROCS if p.group_alive()]


# --------------------------------------------------------------------------- #
# Waiting on the API: read once, then follow the watch stream (bounded)
# --------------------------------------------------------------------------- #
def _field(obj, name):
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def watch_until(what: str, list_fn: Callable, predicate: Callable[[object], bool],
                timeout: float, health: Callable[[], None] | None = None, **kwargs):
    """Return the first object from list_fn(**kwargs) (and its watch) that
    satisfies predicate. Each watch round lasts at most 5 s, and health() runs
    between rounds, so a dead controller fails the wait instead of hanging it.
    """
    from kubernetes import watch
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if health:
            health()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}; last seen:\n"
                               f"{json.dumps(_plain(last), indent=1, default=str)[:4000]}")
        lst = list_fn(**kwargs)
        items = _field(lst, "items") or []
        for obj in items:
            last = obj
            if predicate(obj):
                return obj
        meta = _field(lst, "metadata")
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else meta.resource_version
        secs = max(1, min(5, int(remaining)))
        w = watch.Watch()
        try:
            for ev in w.stream(list_fn, resource_version=rv, timeout_seconds=secs,
                               _request_timeout=secs + 5, **kwargs):
                obj = ev["object"]
                if ev["type"] == "ERROR":
                    break  # e.g. resourceVersion too old: read again
                last = obj
                if ev["type"] != "DELETED" and predicate(obj):
                    return obj
        except Exception as exc:  # noqa: BLE001 - a broken stream is read again
            last = last if last is not None else exc
        finally:
            w.stop()


def _plain(obj):
    if obj is None or isinstance(obj, (dict, list, str, Exception)):
        return obj if not isinstance(obj, Exception) else repr(obj)
    from kubernetes.client import ApiClient
    return ApiClient().sanitize_for_serialization(obj)

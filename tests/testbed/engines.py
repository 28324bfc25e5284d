"""The engines' controllers on the testbed cluster: Flux (source + kustomize) and Argo CD (redis, repo-server,
application-controller), with their CRDs."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from .binaries import bin_dir, crd_dir
from .cluster import Cluster
from .cmp_sidecar import SecretVolume
from .processes import Proc, free_port, http_ok, stop_all, wait_until


# Kubernetes helpers used by the engine fixtures
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
                    assert cur.metadata is not None  # a read object always has metadata
                    doc["metadata"]["resourceVersion"] = cur.metadata.resource_version
                    ext.replace_custom_resource_definition(name, doc)
                names.append(name)

        def established():
            for n in names:
                crd = ext.read_custom_resource_definition(n)
                if not any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
                    return False
            return True

        wait_until(f"CRDs established: {', '.join(names)}", established, timeout, cluster.check_health)
    return names


def ensure_namespace(cluster: Cluster, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    with cluster.api_client() as api:
        try:
            body: Any = {"metadata": {"name": name}}  # the client takes a dict as it takes a V1Namespace
            client.CoreV1Api(api).create_namespace(body)
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

    def _start(
        self, name: str, args: list, env: dict, ready: Callable[[], object] | None = None, timeout: float = 60
    ) -> Proc:
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
        return stop_all(procs, self.ports.values())

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items()}

    def rss(self) -> dict[str, int]:
        """Resident memory in bytes per component (its whole process group)."""
        return {n: p.rss() for n, p in self.procs.items()}


# Flux
class Flux(_Engine):
    namespace = "flux-system"
    order = ["source-controller", "kustomize-controller", "notification-controller"]
    _env: dict[str, str] = {}  # the controllers' environment, set by start; notification-controller shares it

    def start(self, timeout: float = 90) -> "Flux":
        crds = sorted((crd_dir() / "source-controller").glob("*.yaml")) + sorted(
            (crd_dir() / "kustomize-controller").glob("*.yaml")
        )
        apply_crds(self.cluster, crds)
        ensure_namespace(self.cluster, self.namespace)
        b = bin_dir()
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {
            "KUBECONFIG": self.cluster.kubeconfig,
            "RUNTIME_NAMESPACE": self.namespace,
            "TMPDIR": str(tmp),
            "HOME": str(self.workdir),
        }
        self._env = env
        for n in ("storage", "sc_metrics", "sc_health", "kc_metrics", "kc_health"):
            self.ports[n] = free_port()
        storage = self.workdir / "storage"
        storage.mkdir(exist_ok=True)
        self.storage_addr = f"127.0.0.1:{self.ports['storage']}"
        common = [
            "--enable-leader-election=false",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--events-addr=",
        ]
        self._start(
            "source-controller",
            [
                b / "source-controller",
                *common,
                f"--storage-path={storage}",
                f"--storage-addr={self.storage_addr}",
                f"--storage-adv-addr={self.storage_addr}",
                f"--metrics-addr=127.0.0.1:{self.ports['sc_metrics']}",
                f"--health-addr=127.0.0.1:{self.ports['sc_health']}",
            ],
            env,
            ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['sc_health']}/readyz"),
            timeout=timeout,
        )
        self._start(
            "kustomize-controller",
            [
                b / "kustomize-controller",
                *common,
                f"--metrics-addr=127.0.0.1:{self.ports['kc_metrics']}",
                f"--health-addr=127.0.0.1:{self.ports['kc_health']}",
            ],
            env,
            ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['kc_health']}/readyz"),
            timeout=timeout,
        )
        return self

    @property
    def receiver_url(self) -> str:
        """notification-controller's webhook receiver, plain HTTP on loopback (after ``start_notification``)."""
        return f"http://127.0.0.1:{self.ports['receiver']}"

    def start_notification(self, timeout: float = 90) -> str:
        """Apply notification-controller's CRDs and start it (Receivers; its event server unused): the
        receiver's URL. The other controllers keep ``--events-addr=`` (they post no events)."""
        if "notification-controller" in self.procs and self.procs["notification-controller"].alive():
            return self.receiver_url
        apply_crds(self.cluster, sorted((crd_dir() / "notification-controller").glob("*.yaml")))
        for n in ("receiver", "events", "nc_metrics", "nc_health"):
            self.ports[n] = free_port()
        self._start(
            "notification-controller",
            [
                bin_dir() / "notification-controller",
                "--enable-leader-election=false",
                "--watch-all-namespaces=true",
                "--log-level=info",
                "--log-encoding=json",
                f"--receiverAddr=127.0.0.1:{self.ports['receiver']}",
                f"--events-addr=127.0.0.1:{self.ports['events']}",
                f"--metrics-addr=127.0.0.1:{self.ports['nc_metrics']}",
                f"--health-addr=127.0.0.1:{self.ports['nc_health']}",
            ],
            self._env,
            ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['nc_health']}/readyz"),
            timeout=timeout,
        )
        return self.receiver_url


def start_flux(cluster: Cluster, workdir: Path | None = None) -> Flux:
    f = Flux(cluster, workdir or cluster.workdir / "flux")
    try:
        return f.start()
    except BaseException:
        f.stop()
        raise


# Argo CD
class ArgoCD(_Engine):
    namespace = "argocd"
    order = ["redis", "argocd-cmp-server", "argocd-repo-server", "argocd-application-controller", "argocd-server"]
    _env: dict[str, str] = {}  # the components' environment, set by start; argocd-server shares it
    key_volume: SecretVolume | None = None

    def start(self, timeout: float = 90) -> "ArgoCD":
        apply_crds(self.cluster, sorted((crd_dir() / "argocd").glob("*.yaml")))
        ensure_namespace(self.cluster, self.namespace)
        self._seed_objects()
        b = bin_dir()
        for n in ("redis", "repo", "repo_metrics", "ctrl_metrics"):
            self.ports[n] = free_port()
        dirs = {}
        for d in ("tls", "ssh", "gpg", "gpg-source", "plugins", "tmp", "cmp-config", "cmp-tmp"):
            dirs[d] = self.workdir / d
            dirs[d].mkdir(exist_ok=True)
        # The plugin's unix socket lives here: a short path of its own, since a socket's path may hold at
        # most 107 bytes and a pytest (xdist worker) folder is longer than that.
        import tempfile

        dirs["plugins"] = Path(tempfile.mkdtemp(prefix="gl-cmp-"))
        self._start(
            "redis",
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--port",
                str(self.ports["redis"]),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                str(self.workdir),
            ],
            {},
            ready=lambda: self._redis_ping(),
            timeout=30,
        )
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
        self._start_sops_plugin(dirs, timeout)
        self._start(
            "argocd-repo-server",
            [
                b / "argocd",
                "--loglevel=info",
                "--address=127.0.0.1",
                f"--port={self.ports['repo']}",
                "--metrics-address=127.0.0.1",
                f"--metrics-port={self.ports['repo_metrics']}",
                f"--redis={redis_addr}",
                "--disable-tls",
            ],
            dict(env, ARGOCD_BINARY_NAME="argocd-repo-server"),
            ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['repo_metrics']}/metrics"),
            timeout=timeout,
        )
        self._env = env
        self._start(
            "argocd-application-controller",
            [
                b / "argocd",
                "--loglevel=info",
                f"--namespace={self.namespace}",
                f"--redis={redis_addr}",
                f"--repo-server=127.0.0.1:{self.ports['repo']}",
                "--repo-server-plaintext",
                f"--metrics-port={self.ports['ctrl_metrics']}",
                "--status-processors=4",
                "--operation-processors=2",
                "--app-resync=120",
                "--self-heal-timeout-seconds=2",
                "--hydrator-enabled=false",
            ],
            dict(env, ARGOCD_BINARY_NAME="argocd-application-controller", HOSTNAME="argocd-application-controller-0"),
            ready=lambda: http_ok(f"http://127.0.0.1:{self.ports['ctrl_metrics']}/metrics"),
            timeout=timeout,
        )
        return self

    def _start_sops_plugin(self, dirs: dict[str, Path], timeout: float) -> None:
        """The lab's SOPS plugin, as the managed install's sidecar runs it (cmp_sidecar.py): argocd-cmp-server
        with the product's plugin.yaml, on a socket in the repo-server's plugins folder; the key Secret
        kept as files in a folder, SOPS_AGE_KEY_FILE naming its entry."""
        from gitops_lab.adapters.engines.argocd_sops import (
            GENERATE_FILE,
            GENERATE_VAR,
            KEY_DATA,
            KEY_SECRET,
            PLUGIN,
            plugin_files,
        )

        for name, text in plugin_files(self.namespace).items():
            (dirs["cmp-config"] / name).write_text(text, encoding="utf-8")
        self.key_volume = SecretVolume(self.cluster, self.namespace, KEY_SECRET, self.workdir / "sops-age").start()
        b = bin_dir()
        socket_file = dirs["plugins"] / f"{PLUGIN}.sock"
        self._start(
            "argocd-cmp-server",
            [b / "argocd", "--loglevel=info", "--logformat=text", f"--config-dir-path={dirs['cmp-config']}"],
            {
                "ARGOCD_BINARY_NAME": "argocd-cmp-server",
                "ARGOCD_PLUGINSOCKFILEPATH": str(dirs["plugins"]),
                "ARGOCD_CMP_WORKDIR": str(dirs["cmp-tmp"]),
                "TMPDIR": str(dirs["cmp-tmp"]),
                "HOME": str(self.workdir),
                "SOPS_AGE_KEY_FILE": str(self.key_volume.folder / KEY_DATA),
                GENERATE_VAR: str(dirs["cmp-config"] / GENERATE_FILE),
                "PATH": f"{b}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            },
            ready=socket_file.exists,
            timeout=timeout,
        )

    def stop(self) -> list[str]:
        if self.key_volume is not None:
            self.key_volume.stop()
        return super().stop()

    @property
    def server_url(self) -> str:
        """argocd-server's plain-HTTP address (after ``start_server``)."""
        return f"http://127.0.0.1:{self.ports['server']}"

    def start_server(self, timeout: float = 90) -> str:
        """Start argocd-server (the API, and ``/api/webhook``), plain HTTP on loopback; its URL.

        It reads ``argocd-secret`` when it starts (and restarts itself in-process when a webhook
        secret there changes), so a test sets ``webhook.gogs.secret`` first. No UI assets, no dex.
        """
        if "argocd-server" in self.procs and self.procs["argocd-server"].alive():
            return self.server_url
        for n in ("server", "server_metrics"):
            self.ports[n] = free_port()
        assets = self.workdir / "static"
        assets.mkdir(exist_ok=True)
        self._start(
            "argocd-server",
            [
                bin_dir() / "argocd",
                "--loglevel=info",
                "--insecure",
                "--address=127.0.0.1",
                f"--port={self.ports['server']}",
                f"--metrics-port={self.ports['server_metrics']}",
                f"--namespace={self.namespace}",
                f"--redis=127.0.0.1:{self.ports['redis']}",
                f"--repo-server=127.0.0.1:{self.ports['repo']}",
                "--repo-server-plaintext",
                f"--staticassets={assets}",
                "--hydrator-enabled=false",
            ],
            dict(self._env, ARGOCD_BINARY_NAME="argocd-server"),
            ready=lambda: http_ok(f"{self.server_url}/healthz"),
            timeout=timeout,
        )
        return self.server_url

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
            objs: list[tuple[Callable[..., Any], dict[str, Any]]] = [
                (
                    core.create_namespaced_config_map,
                    {"metadata": {"name": "argocd-cm", "labels": labels}, "data": {"timeout.reconciliation": "120s"}},
                ),
                (
                    core.create_namespaced_config_map,
                    {"metadata": {"name": "argocd-rbac-cm", "labels": labels}, "data": {}},
                ),
                (
                    core.create_namespaced_secret,
                    {
                        "metadata": {"name": "argocd-secret", "labels": labels},
                        "type": "Opaque",
                        "stringData": {"server.secretkey": secrets.token_urlsafe(32)},
                    },
                ),
            ]
            for create, body in objs:
                try:
                    create(ns, body)
                except ApiException as exc:
                    if exc.status != 409:
                        raise
            try:
                client.CustomObjectsApi(api).create_namespaced_custom_object(
                    "argoproj.io",
                    "v1alpha1",
                    ns,
                    "appprojects",
                    {
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "AppProject",
                        "metadata": {"name": "default", "namespace": ns},
                        "spec": {
                            "sourceRepos": ["*"],
                            "destinations": [{"namespace": "*", "server": "*"}],
                            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                        },
                    },
                )
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

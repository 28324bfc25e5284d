"""The control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok nodes."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path
from typing import Any


from .binaries import bin_dir
from .pki import make_pki, write_kubeconfig
from .processes import LOG_DIRS, Proc, free_port, http_ok, stop_all, wait_until


# Cluster
class Cluster:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok."""

    def __init__(self, workdir: Path, nodes: int = 1):
        self.workdir = workdir
        self.logs_dir = workdir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        LOG_DIRS.append(self.logs_dir)
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
        return stop_all(procs, self.ports.values())

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
        self._start(
            "etcd",
            [
                b / "etcd",
                "--name=testbed",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=testbed={peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=1073741824",
                "--listen-metrics-urls=",
                "--log-level=warn",
            ],
        )
        wait_until("etcd /health", lambda: http_ok(f"{etcd_url}/health"), 30, self.check_health)
        pki = self.pki
        self._start(
            "kube-apiserver",
            [
                b / "kube-apiserver",
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
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
            ],
        )
        ctx = self._ssl_ctx()
        wait_until("kube-apiserver /readyz", lambda: http_ok(f"{self.server}/readyz", ctx), timeout, self.check_health)
        common = [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--v=1",
        ]
        self._start(
            "kube-controller-manager",
            [
                b / "kube-controller-manager",
                *common,
                f"--secure-port={self.ports['kcm']}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--use-service-account-credentials=false",
                "--controllers=*",
            ],
        )
        self._start(
            "kube-scheduler",
            [
                b / "kube-scheduler",
                *common,
                f"--secure-port={self.ports['scheduler']}",
            ],
        )
        self._start(
            "kwok",
            [
                b / "kwok",
                f"--kubeconfig={kc}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                f"--server-address=127.0.0.1:{self.ports['kwok']}",
                "--cidr=10.244.0.1/16",
                "--node-ip=10.0.0.1",
                "--node-lease-duration-seconds=40",
            ],
            env={"HOME": str(self.workdir)},
        )  # no stray ~/.kwok config is read
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
                node: Any = {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": f"kwok-node-{i}",
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "type": "kwok",
                            "kubernetes.io/hostname": f"kwok-node-{i}",
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                        },
                    },
                    "status": {
                        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                    },
                }
                # the client serialises a plain dict body as it does a V1Node
                core.create_node(node)

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
            wait_until("the default ServiceAccount (kube-controller-manager)", default_sa, timeout, self.check_health)


def start_cluster(workdir: Path | None = None, nodes: int = 1, timeout: float = 120) -> Cluster:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="gitops-lab-testbed-"))
    c = Cluster(workdir, nodes)
    try:
        return c.start(timeout)
    except BaseException:
        c.stop()
        raise

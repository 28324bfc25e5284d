"""A class's Git server inside the cluster: the same server.py `up` runs on kind, one per class.

It runs in its own namespace (``<class>-class-git``), so `up`'s server and a
class can share a cluster. Its users file (a Secret) gives each learner their
own repository; the Deployment's ``GIT_REPOS`` names every learner, so the
server creates the repositories when it starts; the repositories live on a
PersistentVolumeClaim (the cluster's default StorageClass). A change of the
class restarts the server (the config hash on the pod template), so
`class create` waits until the new pod answers before it pushes.

Learners and the CLI reach it at ``base_url``: by default the first node's
address and the Service's NodePort, or what the instructor passes (an Ingress,
a LoadBalancer, a port-forward). The engines reach it through the Service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.gitserver.base import ClassCredentials, GitServer, RepoGrant, users_file
from gitops_lab.adapters.gitserver.folder import check_base_url
from gitops_lab.adapters.gitserver.incluster import (
    GitServerEndpoints,
    GitServerSettings,
    pinned_image,
    render_manifests,
    run_server,
)
from gitops_lab.deadline import Deadline
from gitops_lab.errors import ClusterError, UsageError
from gitops_lab.kube.apply import Applier
from gitops_lab.kube.wait import wait_deleted

if TYPE_CHECKING:
    from gitops_lab.kube.client import Kube

DEFAULT_NODE_PORT = 30081  # `up`'s server has 30080
SERVICE_PORT = 8080
VOLUME = "gitserver-data"  # manifests/gitserver/pvc.yaml
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def class_git_namespace(class_name: str) -> str:
    namespace = f"{class_name}-class-git"
    if len(namespace) > 63:
        raise UsageError(
            f"the class name {class_name!r} is too long for the Git server's namespace {namespace!r} (over 63)",
            fix="use a shorter --name (at most 53 characters)",
        )
    return namespace


def node_address(kube: Kube) -> str:
    """An address of the cluster's first Ready node: its ExternalIP, else its InternalIP."""
    nodes = kube.core().list_node().items
    ready = [
        n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in (n.status.conditions or []))
    ] or nodes
    for kind in ("ExternalIP", "InternalIP"):
        for node in ready:
            for address in node.status.addresses or []:
                if address.type == kind:
                    return address.address
    raise ClusterError(
        "no node of the cluster has an address to reach the class's Git server at",
        fix="pass --git-base-url with the URL learners reach the Service gitserver at (an Ingress, a LoadBalancer)",
    )


def check_default_storage_class(applier) -> None:
    """The server's repositories need a volume: without a default StorageClass its claim would
    stay Pending and the server would never start."""
    classes = applier.list("storage.k8s.io/v1", "StorageClass")
    if not any((c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true" for c in classes):
        names = ", ".join(c["metadata"]["name"] for c in classes) or "none"
        raise ClusterError(
            f"the cluster has no default StorageClass (StorageClasses: {names}), so the class's Git server "
            "gets no volume for its repositories",
            fix=f"mark one as default (annotation {DEFAULT_CLASS_ANNOTATION}=true), or serve a folder "
            "yourself and pass --git-root and --git-base-url",
        )


def delete_namespace(
    applier: Applier, namespace: str, deadline: Deadline | None, on_progress: Callable[[str], None] | None
) -> list[str]:
    """Delete a class's Git server namespace (its Deployment, volume, every repository) and wait until it is
    gone, so a new class can start one again; what changed."""
    if not applier.delete("v1", "Namespace", namespace):
        return []
    wait_deleted(
        applier,
        "v1",
        "Namespace",
        namespace,
        None,
        deadline or Deadline(300),
        f"namespace {namespace} to be deleted",
        "terminating",
        on_progress,
    )
    return [f"namespace {namespace} deleted"]


@dataclass
class ClusterClassGitServer(GitServer):
    class_name: str
    kube: Kube | None = None
    # Where learners and the CLI reach it; None: http://<node address>:<node_port>, found on first use.
    base_url: str | None = None
    node_port: int = DEFAULT_NODE_PORT
    storage: str = "2Gi"
    image: str = field(default_factory=pinned_image)
    kind: str = "in-cluster"
    enforces_access: bool = True
    on_progress: Callable[[str], None] | None = None
    deadline: Deadline | None = None

    def __post_init__(self) -> None:
        self.namespace = class_git_namespace(self.class_name)
        if self.base_url:
            check_base_url(self.base_url)
        if not 30000 <= self.node_port <= 32767:
            raise UsageError(
                f"the Git server NodePort {self.node_port} is not between 30000 and 32767",
                fix="pass --git-node-port in the cluster's NodePort range",
            )

    def url(self) -> str:
        if not self.base_url:
            self.base_url = f"http://{node_address(self._kube())}:{self.node_port}"
        return self.base_url.rstrip("/")

    def describe(self) -> str:
        return f"in the cluster: Service gitserver in {self.namespace}"

    def endpoints(self, repository: str) -> GitServerEndpoints:
        return GitServerEndpoints(
            f"{self.url()}/{repository}.git",
            f"http://gitserver.{self.namespace}.svc.cluster.local:{SERVICE_PORT}/{repository}.git",
        )

    def settings(self, grants: list[RepoGrant]) -> GitServerSettings:
        return GitServerSettings(
            namespace=self.namespace,
            repositories=tuple(sorted(g.repository for g in grants)),
            storage=self.storage,
            ports=LabPorts(git_node=self.node_port),
            image=self.image,
        )

    def manifests(self, grants: list[RepoGrant], users: ClassCredentials) -> list[dict]:
        objects = render_manifests(self.settings(grants), users_file(grants, users))
        for obj in objects:
            obj["metadata"].setdefault("labels", {})["gitops-lab.io/class"] = self.class_name
        return objects

    def provision(self, grants: list[RepoGrant], users: ClassCredentials) -> list[str]:
        """Apply the server with the whole class's users and repositories, then wait until the
        (re)started server answers at the base URL."""
        applier = Applier(self._kube())
        if applier.get("v1", "PersistentVolumeClaim", VOLUME, self.namespace) is None:
            check_default_storage_class(applier)
        return run_server(
            applier,
            self.manifests(grants, users),
            self.namespace,
            self.url(),
            self.deadline or Deadline(300),
            f"make {self.url()} reach the Service gitserver in {self.namespace} "
            f"(NodePort {self.node_port}), or pass --git-base-url with a URL that does",
            "the class's Git server",
            self.on_progress,
        )

    def remove(self, repositories: list[str]) -> list[str]:
        """Repositories go with the server's volume (``retire``); one alone is not removed."""
        return []

    def retire(self, users: ClassCredentials) -> list[str]:
        """Delete the server's namespace (the Deployment, its volume, every repository) and wait
        until it is gone, so a new class can start one again."""
        return delete_namespace(Applier(self._kube()), self.namespace, self.deadline, self.on_progress)

    def _kube(self) -> Kube:
        if self.kube is None:
            raise RuntimeError("the in-cluster class Git server needs a cluster connection")
        return self.kube

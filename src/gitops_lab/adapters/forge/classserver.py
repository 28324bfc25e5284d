"""A class's Git server on Gitea (`class create --git-server gitea`).

``GiteaClassGitServer`` provisions a class on a Gitea that runs (classforge.py:
its organisation, accounts, repositories and grants) and is what the testbed
tests drive against its Gitea process. ``ClusterGiteaClassGitServer`` first
runs that Gitea in the cluster, one per class, in the class's Git namespace
(``<class>-class-git``) with the class's NodePort, from the same manifests as
`up --git-server gitea` (incluster.py ``render_manifests``), its admin (the
instructor) made with Gitea's CLI in its pod. Learners and the CLI reach it at
``http://<node address>:<node port>`` (or --git-base-url), the engines through
its Service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.forge.classforge import (
    ClassAccounts,
    account,
    class_organisation,
    provision_class,
    remove_repositories,
)
from gitops_lab.adapters.forge.incluster import (
    SECRET_KEY_FILE,
    GiteaSettings,
    kept_secret_key,
    pod_admin_creator,
    render_manifests,
)
from gitops_lab.adapters.forge.seed import AdminCreator, read_accounts
from gitops_lab.adapters.gitserver.base import ClassCredentials, GitServer, RepoGrant
from gitops_lab.adapters.gitserver.clusterclass import (
    DEFAULT_NODE_PORT,
    check_default_storage_class,
    class_git_namespace,
    delete_namespace,
    node_address,
)
from gitops_lab.adapters.gitserver.folder import check_base_url
from gitops_lab.adapters.gitserver.incluster import GitServerEndpoints, wait_for_deployment
from gitops_lab.deadline import Deadline
from gitops_lab.errors import UsageError
from gitops_lab.kube.apply import Applier

if TYPE_CHECKING:
    from gitops_lab.kube.client import Kube

VOLUME = "gitea-data"  # manifests/gitea/pvc.yaml


@dataclass
class GiteaClassGitServer(GitServer):
    """A class on the Gitea at ``base_url``, in the organisation named after the class."""

    class_name: str
    credentials_file: Path  # the forge's accounts, kept 0600 (forge-credentials.json in the class's folder)
    base_url: str | None = None  # where the host reaches Gitea; see forge_url()
    engine_base_url: str | None = None  # where the engines reach it (default: base_url)
    create_admin: AdminCreator | None = None
    kind: str = "gitea"
    enforces_access: bool = True
    on_progress: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        self.org = class_organisation(self.class_name)
        for url in filter(None, (self.base_url, self.engine_base_url)):
            check_base_url(url)

    def forge_url(self) -> str:
        if not self.base_url:
            raise UsageError("a class on Gitea needs Gitea's URL", fix="pass --git-base-url")
        return self.base_url.rstrip("/")

    def engine_url(self) -> str:
        return (self.engine_base_url or self.forge_url()).rstrip("/")

    def url(self) -> str:
        return f"{self.forge_url()}/{self.org}"

    def describe(self) -> str:
        return f"Gitea, organisation {self.org}"

    def endpoints(self, repository: str) -> GitServerEndpoints:
        return GitServerEndpoints(f"{self.url()}/{repository}.git", f"{self.engine_url()}/{self.org}/{repository}.git")

    def forge(self) -> tuple[str, Path]:
        return self.forge_url(), self.credentials_file

    def start(self) -> list[str]:
        """Make Gitea run; a Gitea that runs already needs nothing."""
        return []

    def admin_creator(self) -> AdminCreator:
        if self.create_admin is None:
            raise UsageError(
                f"Gitea at {self.forge_url()} has no admin account for the instructor yet",
                fix="make it with `gitea admin user create --admin` using the class's instructor credentials",
            )
        return self.create_admin

    def provision(self, grants: list[RepoGrant], users: ClassCredentials) -> list[str]:
        """Gitea running, then the class's organisation, accounts, repositories and grants; the accounts kept
        0600 in ``credentials_file``."""
        changed = self.start()
        learners = {g.writer.username: account(g.writer) for g in grants}
        accounts = ClassAccounts(account(users.writer), account(users.reader), tuple(learners.values()))
        accounts.write(self.credentials_file)
        if self.on_progress:
            self.on_progress(f"provisioning organisation {self.org}")
        writers = {g.repository: g.writer.username for g in grants}
        return changed + provision_class(self.forge_url(), self.org, accounts, writers, self.admin_creator())

    def remove(self, repositories: list[str]) -> list[str]:
        instructor = read_accounts(self.credentials_file).admin
        return remove_repositories(self.forge_url(), self.org, instructor, repositories)


@dataclass
class ClusterGiteaClassGitServer(GiteaClassGitServer):
    """The class's own Gitea in the cluster, in namespace ``<class>-class-git``."""

    kube: Kube | None = None
    node_port: int = DEFAULT_NODE_PORT
    storage: str = "2Gi"
    deadline: Deadline | None = None
    settings: GiteaSettings = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.namespace = class_git_namespace(self.class_name)
        if not 30000 <= self.node_port <= 32767:
            raise UsageError(
                f"the Git server NodePort {self.node_port} is not between 30000 and 32767",
                fix="pass --git-node-port in the cluster's NodePort range",
            )
        self.settings = GiteaSettings(
            namespace=self.namespace, storage=self.storage, ports=LabPorts(git_node=self.node_port)
        )

    def forge_url(self) -> str:
        if not self.base_url:
            self.base_url = f"http://{node_address(self._kube())}:{self.node_port}"
        return self.base_url.rstrip("/")

    def engine_url(self) -> str:
        return self.settings.cluster_url

    def describe(self) -> str:
        return f"Gitea in the cluster: Service gitea in {self.namespace}, organisation {self.org}"

    def manifests(self) -> list[dict[str, Any]]:
        objects = render_manifests(self.settings, kept_secret_key(self.credentials_file.parent / SECRET_KEY_FILE))
        for obj in objects:
            obj["metadata"].setdefault("labels", {})["gitops-lab.io/class"] = self.class_name
        return objects

    def start(self) -> list[str]:
        applier = Applier(self._kube())
        if applier.get("v1", "PersistentVolumeClaim", VOLUME, self.namespace) is None:
            check_default_storage_class(applier)
        changed = applier.apply_changed(self.manifests())
        deadline = self.deadline or Deadline(300)
        wait_for_deployment(applier, "gitea", self.namespace, deadline, "the class's Gitea", self.on_progress)
        return changed

    def admin_creator(self) -> AdminCreator:
        return pod_admin_creator(self._kube(), self.namespace)

    def retire(self, users: ClassCredentials) -> list[str]:
        """Delete Gitea's namespace: the Deployment, its volume, every account and repository."""
        return delete_namespace(Applier(self._kube()), self.namespace, self.deadline, self.on_progress)

    def _kube(self) -> Kube:
        if self.kube is None:
            raise RuntimeError("the class's Gitea in the cluster needs a cluster connection")
        return self.kube

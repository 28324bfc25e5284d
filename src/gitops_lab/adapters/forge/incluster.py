"""Gitea in the kind cluster as `up`'s Git server (`up --git-server gitea`): the lab's forge.

`start` applies its manifests (manifests/gitea/), waits until the host reaches
it, makes the admin with Gitea's own CLI inside its pod, then seeds the
accounts and the repositories through the API (seed.py). After the lab's first
commit, `protect` adds main's branch rule (prod changes go through an approved
pull request) and the push webhook to the engine, where the engine takes one.

The accounts are generated once and kept 0600 in the environment's folder
(forge-credentials.json). The CLI pushes as the learner and the engines fetch
as ``engine``: those two are also written as the environment's Git credentials
(gitserver-credentials.json), which every command reads for its Git calls.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.forge.gitea import BranchRule, GiteaAPI
from gitops_lab.adapters.forge.seed import (
    CREDENTIALS_FILE,
    AdminCreator,
    admin_create_arguments,
    ForgeAccounts,
    LabRepository as ForgeRepository,
    load_or_create_accounts,
    seed_lab,
)
from gitops_lab.adapters.gitserver.credentials import (
    Credentials,
    GitServerCredentials,
    save_credentials,
)
from gitops_lab.adapters.gitserver.incluster import manifests_folder as gitserver_manifests, wait_for_deployment
from gitops_lab.adapters.gitserver.lab import LabGitServer, LabRepository, PushWebhook
from gitops_lab.errors import ForgeError
from gitops_lab.kube.apply import Applier
from gitops_lab.kube.exec import exec_in_pod, ready_pod
from gitops_lab.resources import data_dir
from gitops_lab.state import environment_dir, write_private_text

if TYPE_CHECKING:
    from gitops_lab.deadline import Deadline
    from gitops_lab.kube.client import Kube

TEMPLATES = ("pvc.yaml", "service.yaml", "deployment.yaml")
SELECTOR = "app.kubernetes.io/name=gitea"
SECRET_KEY_FILE = "forge-secret-key"
PLATFORM = "ml-platform-pipelines"
# Everything the learner and the CLI may push straight to main: all but prod's overlay and the base it
# builds on, which reach main only through an approved pull request (gates.yaml's approval gate).
DIRECT_PUSH_FILES = ";".join(
    (
        "overlays/dev/**",
        "overlays/staging/**",
        "ci/**",
        ".github/**",
        "docs/**",
        "data/**",
        "gates.yaml",
        "requirements.lock",
        "*.md",
        ".gitignore",
        ".sops.yaml",
    )
)


def manifests_folder() -> Path:
    return data_dir("manifests") / "gitea"


def pinned_image() -> str:
    return yaml.safe_load((manifests_folder() / "images.yaml").read_text(encoding="utf-8"))["image"]


@dataclass(frozen=True)
class GiteaSettings:
    namespace: str = "gitops-lab-git"
    storage: str = "1Gi"
    ports: LabPorts = field(default_factory=LabPorts)
    image: str = field(default_factory=pinned_image)
    repository: str = "lab"

    @property
    def host_url(self) -> str:
        """Where the host reaches Gitea: http://localhost:8180 (kind's port mapping to the NodePort)."""
        return f"http://localhost:{self.ports.git_host}"

    @property
    def cluster_url(self) -> str:
        return f"http://gitea.{self.namespace}.svc.cluster.local:3000"


def render_manifests(settings: GiteaSettings, secret_key: str) -> list[dict[str, Any]]:
    """Every object of the lab's Gitea, in apply order (namespace first, then what the pod mounts)."""
    values = {
        "namespace": settings.namespace,
        "storage": settings.storage,
        "node_port": str(settings.ports.git_node),
        "image": settings.image,
        "root_url": settings.cluster_url + "/",
        "config_hash": hashlib.sha256(f"{settings.image}\0{secret_key}".encode()).hexdigest()[:16],
    }
    objects: list[dict[str, Any]] = []
    for path in (gitserver_manifests() / "namespace.yaml", *(manifests_folder() / n for n in TEMPLATES)):
        text = string.Template(path.read_text(encoding="utf-8")).substitute(values)
        objects.extend(o for o in yaml.safe_load_all(text) if o)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "gitea-secret-key",
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/name": "gitea", "app.kubernetes.io/part-of": "gitops-lab"},
        },
        "type": "Opaque",
        "stringData": {"secret-key": secret_key},
    }
    return [objects[0], secret, *objects[1:]]


def kept_secret_key(path: Path) -> str:
    """Gitea's SECRET_KEY (what it encrypts stored secrets with), made once and kept 0600 in ``path``."""
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    if not kept:
        kept = secrets.token_urlsafe(32)
        write_private_text(path, kept + "\n", mode=0o600)
    return kept


def image_references(settings: GiteaSettings | None = None) -> list[str]:
    """Images the rendered Gitea runs (for `gitops-lab images`)."""
    settings = settings or GiteaSettings()
    return [
        c["image"]
        for obj in render_manifests(settings, "")
        for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    ]


def pod_admin_creator(kube: Kube, namespace: str) -> AdminCreator:
    """Make Gitea's admin with `gitea admin user create` inside its running pod (the image's wrapper
    reads the instance's app.ini)."""

    def create(admin) -> None:
        pod = ready_pod(kube, namespace, SELECTOR)
        done = exec_in_pod(kube, namespace, pod, ["gitea", *admin_create_arguments(admin)])
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise ForgeError(
                f"`gitea admin user create --username {admin.username}` failed in pod {namespace}/{pod}: "
                f"{said[-1] if said else done.returncode}",
                fix=(
                    f"if the account exists with another password, set the kept one with `kubectl -n {namespace} "
                    f"exec deploy/gitea -- gitea admin user change-password --username {admin.username} "
                    "--password ...`; then run `gitops-lab up` again"
                ),
            )

    return create


@dataclass
class GiteaGitServer(LabGitServer):
    """Gitea in the cluster: the lab repository ``learner/lab`` and the platform repository beside it."""

    env_name: str
    settings: GiteaSettings = field(default_factory=GiteaSettings)
    forge = True

    def start_title(self, deadline: Deadline) -> str | None:
        return f"Starting Gitea, the lab's forge (up to {deadline.describe()})"

    @property
    def credentials_file(self) -> Path:
        return environment_dir(self.env_name) / CREDENTIALS_FILE

    def accounts(self) -> ForgeAccounts:
        accounts = load_or_create_accounts(self.credentials_file)
        # every command's Git calls read the environment's Git credentials: the learner pushes, the engine reads
        save_credentials(
            self.env_name,
            GitServerCredentials(
                Credentials(accounts.learner.username, accounts.learner.password),
                Credentials(accounts.engine.username, accounts.engine.password),
            ),
        )
        return accounts

    def secret_key(self) -> str:
        return kept_secret_key(environment_dir(self.env_name) / SECRET_KEY_FILE)

    def manifests(self) -> list[dict[str, Any]]:
        return render_manifests(self.settings, self.secret_key())

    def start(self, kube: Kube, deadline: Deadline, on_progress: Callable[[str], None]) -> list[str]:
        """Apply Gitea's objects, wait until it answers on the host, then seed accounts and repositories."""
        applier = Applier(kube)
        changed = applier.apply_changed(self.manifests())
        wait_for_deployment(applier, "gitea", self.settings.namespace, deadline, "Gitea", on_progress)
        on_progress("seeding accounts and repositories")
        accounts = self.accounts()
        changed += seed_lab(
            self.settings.host_url,
            accounts,
            pod_admin_creator(kube, self.settings.namespace),
            ForgeRepository(self.settings.repository),
        )
        api = GiteaAPI(self.settings.host_url, accounts.admin)
        owner = accounts.learner.username
        if api.ensure_repository(owner, PLATFORM, private=True):
            changed.append(f"created repository {owner}/{PLATFORM}")
        if api.ensure_collaborator(owner, PLATFORM, accounts.engine.username, "read"):
            changed.append(f"gave {accounts.engine.username} read access to {owner}/{PLATFORM}")
        return changed

    def repository(self) -> LabRepository:
        accounts = self.accounts()
        owner = accounts.learner.username
        return LabRepository(
            f"{self.settings.host_url}/{owner}/{self.settings.repository}.git",
            f"{self.settings.cluster_url}/{owner}/{self.settings.repository}.git",
            reader=Credentials(accounts.engine.username, accounts.engine.password),
            writer=Credentials(accounts.learner.username, accounts.learner.password),
            platform_url=f"{self.settings.host_url}/{owner}/{PLATFORM}.git",
            forge_url=self.settings.host_url,
            forge_credentials=str(self.credentials_file),
        )

    def protect(self, kube: Kube, push_webhook: PushWebhook) -> list[str]:
        """Once main has the lab's first commit: main's branch rule, and the push webhook to the engine
        where it takes one; what changed."""
        accounts = self.accounts()
        webhook_url, changed = push_webhook(accounts.webhook_secret)
        changed += seed_lab(
            self.settings.host_url,
            accounts,
            pod_admin_creator(kube, self.settings.namespace),
            ForgeRepository(
                self.settings.repository, rule=BranchRule(push_files=DIRECT_PUSH_FILES), webhook_url=webhook_url
            ),
        )
        return changed

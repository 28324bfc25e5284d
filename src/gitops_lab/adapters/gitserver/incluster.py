"""The in-cluster Git server for kind: render its manifests, hand it its users' hashes.

The server is `git http-backend` behind a small stdlib HTTP server with basic
auth (manifests/gitserver/server.py), in a stock image with git and python3.
Why not Gitea: see docs/laptop.md ("The Git server").

Two users per lab environment, generated once and kept in the state folder
(0600, credentials.py): ``writer`` for the learner and the CLI (push), ``reader`` for the
engines (fetch only). The Secret in the cluster holds only PBKDF2 hashes.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.gitserver.credentials import Credentials, GitServerCredentials, load_or_create_credentials
from gitops_lab.adapters.gitserver.lab import LabGitServer, LabRepository
from gitops_lab.errors import WaitTimeout
from gitops_lab.kube.apply import Applier
from gitops_lab.kube.rollout import rollout_verdict
from gitops_lab.kube.wait import wait_for
from gitops_lab.resources import data_dir

if TYPE_CHECKING:
    from gitops_lab.deadline import Deadline
    from gitops_lab.kube.apply import Applier
    from gitops_lab.kube.client import Kube

TEMPLATES = ("namespace.yaml", "pvc.yaml", "service.yaml", "deployment.yaml")
PBKDF2_ROUNDS = 100_000  # the same as server.py
HOST_PORT_FIX = "check that nothing else listens on that port, then run `gitops-lab up` again"


def manifests_folder() -> Path:
    return data_dir("manifests") / "gitserver"


def pinned_image() -> str:
    return yaml.safe_load((manifests_folder() / "images.yaml").read_text(encoding="utf-8"))["image"]


@dataclass(frozen=True)
class GitServerSettings:
    namespace: str = "gitops-lab-git"
    # The lab repository first; the platform repository (adapters/repo/platform.py) beside it.
    repositories: tuple[str, ...] = ("lab", "ml-platform-pipelines")
    storage: str = "1Gi"
    ports: LabPorts = field(default_factory=LabPorts)
    image: str = field(default_factory=pinned_image)


@dataclass(frozen=True)
class GitServerEndpoints:
    """Where the repository is reached: from the host, and from inside the cluster."""

    host_url: str  # http://localhost:8180/lab.git  (learner, CLI)
    cluster_url: str  # http://gitserver.gitops-lab-git.svc.cluster.local:8080/lab.git  (engines)


def endpoints(settings: GitServerSettings, repository: str | None = None) -> GitServerEndpoints:
    repo = repository or settings.repositories[0]
    return GitServerEndpoints(
        host_url=f"http://localhost:{settings.ports.git_host}/{repo}.git",
        cluster_url=f"http://gitserver.{settings.namespace}.svc.cluster.local:8080/{repo}.git",
    )


def auth_line(
    cred: Credentials, role: str, repositories: tuple[str, ...] | None = None, salt_source: str | None = None
) -> str:
    """One line of the server's users file: "user:role:salt:pbkdf2-hex[:repo,...]".

    Salts are derived from the password itself unless given, so rendering twice
    gives the same Secret and re-applying changes nothing. With ``repositories``
    the user reaches only those (server.py enforces it).
    """
    salt = salt_source or hashlib.sha256(f"salt:{cred.username}:{cred.password}".encode()).hexdigest()[:16]
    digest = hashlib.pbkdf2_hmac("sha256", cred.password.encode(), salt.encode(), PBKDF2_ROUNDS).hex()
    line = f"{cred.username}:{role}:{salt}:{digest}"
    return f"{line}:{','.join(repositories)}" if repositories is not None else line


def auth_file(creds: GitServerCredentials, salt_source: str | None = None) -> str:
    """The server's users file of a lab of one's own: the writer and the reader, every repository."""
    lines = [
        auth_line(cred, role, None, salt_source) for cred, role in ((creds.writer, "write"), (creds.reader, "read"))
    ]
    return "\n".join(lines) + "\n"


def render_manifests(settings: GitServerSettings, users: str) -> list[dict[str, Any]]:
    """Every object of the Git server, in apply order (namespace first); ``users`` is its users file."""
    folder = manifests_folder()
    code = (folder / "server.py").read_text(encoding="utf-8")
    config_hash = hashlib.sha256((code + users + settings.image).encode()).hexdigest()[:16]
    values = {
        "namespace": settings.namespace,
        "storage": settings.storage,
        "node_port": str(settings.ports.git_node),
        "image": settings.image,
        "repositories": ",".join(settings.repositories),
        "config_hash": config_hash,
    }
    objects: list[dict[str, Any]] = []
    for name in TEMPLATES:
        text = string.Template((folder / name).read_text(encoding="utf-8")).substitute(values)
        objects.extend(o for o in yaml.safe_load_all(text) if o)
    labels = {"app.kubernetes.io/name": "gitserver", "app.kubernetes.io/part-of": "gitops-lab"}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gitserver-users", "namespace": settings.namespace, "labels": labels},
        "type": "Opaque",
        "stringData": {"users": users},
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "gitserver-code", "namespace": settings.namespace, "labels": labels},
        "data": {"server.py": code},
    }
    # Namespace first, then what the Deployment mounts, then the rest.
    return [objects[0], secret, configmap, *objects[1:]]


def image_references(settings: GitServerSettings | None = None) -> list[str]:
    """Images the rendered Git server runs (for `gitops-lab images`)."""
    settings = settings or GitServerSettings()
    refs = []
    for obj in render_manifests(settings, ""):
        for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            refs.append(container["image"])
    return refs


@dataclass
class InClusterGitServer(LabGitServer):
    """What `up` uses on kind: render, then apply with the kube layer, then wait for the Deployment.

    The CLI pushes as the writer, the engines fetch as the reader.
    """

    env_name: str
    settings: GitServerSettings = field(default_factory=GitServerSettings)

    def start_title(self, deadline: Deadline) -> str | None:
        return f"Starting the Git server (up to {deadline.describe()})"

    def start(self, kube: Kube, deadline: Deadline, on_progress: Callable[[str], None]) -> list[str]:
        """Apply the server's objects, wait until its Deployment is Available and the host URL answers."""
        return run_server(
            Applier(kube),
            self.manifests(),
            self.settings.namespace,
            self.host_base_url(),
            deadline,
            HOST_PORT_FIX,
            "the Git server",
            on_progress,
        )

    def repository(self) -> LabRepository:
        credentials, lab = self.credentials(), self.endpoints()
        platform = endpoints(self.settings, self.settings.repositories[1]).host_url
        return LabRepository(
            lab.host_url,
            lab.cluster_url,
            reader=credentials.reader,
            writer=credentials.writer,
            platform_url=platform if len(self.settings.repositories) > 1 else None,
        )

    def credentials(self) -> GitServerCredentials:
        return load_or_create_credentials(self.env_name)

    def manifests(self) -> list[dict[str, Any]]:
        return render_manifests(self.settings, auth_file(self.credentials()))

    def endpoints(self) -> GitServerEndpoints:
        return endpoints(self.settings)

    def host_base_url(self) -> str:
        """Where the host reaches the server: http://localhost:8180."""
        return self.endpoints().host_url.rsplit("/", 1)[0]

    def host_url_with_credentials(self) -> str:
        """The clone URL with the writer's credentials in it (for the CLI's own pushes only)."""
        writer = self.credentials().writer
        url = self.endpoints().host_url
        return url.replace("http://", f"http://{writer.username}:{writer.password}@", 1)

    def wait_reachable_from_host(self, deadline: Deadline, on_progress: Callable[[str], None] | None = None) -> None:
        """Until the host URL answers /healthz: a Deployment is Available a moment before
        kube-proxy routes its NodePort through the kind port mapping."""
        wait_answers(self.host_base_url(), deadline, HOST_PORT_FIX, on_progress)


def run_server(
    applier: Applier,
    objects: list[dict[str, Any]],
    namespace: str,
    base_url: str,
    deadline: Deadline,
    fix: str,
    what: str,
    on_progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Apply a Git server's objects, then wait until its Deployment is Available and ``base_url``
    answers (``fix``: what a timeout of the latter tells to do). Returns what changed."""
    changed = applier.apply_changed(objects)
    wait_for_deployment(applier, "gitserver", namespace, deadline, what, on_progress)
    wait_answers(base_url, deadline, fix, on_progress)
    return changed


def wait_for_deployment(
    applier: Applier,
    name: str,
    namespace: str,
    deadline: Deadline,
    what: str,
    on_progress: Callable[[str], None] | None = None,
) -> None:
    """Until a Git server's Deployment ``namespace/name`` is Available, by ``deadline``."""
    wait_for(
        applier,
        "apps/v1",
        "Deployment",
        name,
        namespace,
        rollout_verdict,
        deadline,
        f"{what} Deployment {namespace}/{name} to be Available",
        on_progress=on_progress,
    )


def wait_answers(base_url: str, deadline: Deadline, fix: str, on_progress: Callable[[str], None] | None = None) -> None:
    """Until the server at ``base_url`` answers /healthz with 200 (its repositories exist)."""
    import time
    import urllib.error
    import urllib.request

    url = base_url.rstrip("/") + "/healthz"
    delay, last = 0.2, "no answer yet"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=max(0.5, min(5.0, deadline.remaining()))) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if deadline.expired:
            raise WaitTimeout(
                f"the Git server runs but {url} did not answer before the deadline; last: {last}", fix=fix
            )
        if on_progress:
            on_progress(f"waiting for {url}: {last}")
        time.sleep(min(delay, max(0.0, deadline.remaining())))
        delay = min(delay * 2, 2.0)

"""The interface every engine adapter implements, and the records it returns."""

from __future__ import annotations

import abc
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from gitops_lab.kube.apply import Applier
from gitops_lab.kube.client import Kube
from gitops_lab.kube.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.resources import manifests_dir

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EnvironmentTarget:
    """One environment as the engine sees it: where to read, where to apply."""

    name: str
    namespace: str
    path: str
    self_heal: bool = True
    prune: bool = True


@dataclass(frozen=True)
class RepoAccess:
    """The Git URL as the engine reaches it, and optional basic-auth credentials."""

    url: str
    branch: str = "main"
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass
class EngineStatus:
    environment: str
    engine: str
    revision: str | None
    synced: bool
    healthy: bool
    sync_state: str
    health_state: str
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InstallReport:
    engine: str
    mode: str
    version: str | None
    changed: bool
    details: list[str] = field(default_factory=list)


class Engine(abc.ABC):
    name: str
    namespace: str

    def __init__(self, kube: Kube):
        self.kube = kube
        self.applier = Applier(kube)

    # -- lifecycle -----------------------------------------------------------
    @abc.abstractmethod
    def install(self, mode: str, reporter: Reporter, deadline: Deadline, source_url: str | None = None) -> InstallReport:
        """managed: apply the pinned release plus the lab's patches; external: check it runs."""

    @abc.abstractmethod
    def register(self, targets: list[EnvironmentTarget], repo: RepoAccess) -> list[str]:
        """Create or update what makes the engine sync each environment. Returns what changed."""

    @abc.abstractmethod
    def request_reconcile(self, env: str) -> None:
        """Ask the engine to look at Git now rather than at its next poll."""

    @abc.abstractmethod
    def status(self, env: str) -> EngineStatus:
        """What the engine reports for ``env`` right now."""

    @abc.abstractmethod
    def wait_applied(self, env: str, commit: str | None, deadline: Deadline,
                     on_progress: Progress | None = None) -> EngineStatus:
        """Wait until ``env`` has applied ``commit`` (any, if None) and is healthy."""

    # -- shared helpers ---------------------------------------------------------
    def render(self, template: str, **values: str) -> list[dict[str, Any]]:
        """Render manifests/<engine>/<template> with ${name} placeholders."""
        text = (manifests_dir(self.name) / template).read_text(encoding="utf-8")
        rendered = string.Template(text).substitute(values)
        return [doc for doc in yaml.safe_load_all(rendered) if doc]

    def apply_changed(self, objects: list[dict[str, Any]]) -> list[str]:
        """Apply objects; return "Kind/name" of those whose stored spec changed."""
        changed = []
        for obj in objects:
            meta = obj["metadata"]
            before = self.applier.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
            after = self.applier.apply(obj)
            if before is None or _managed_view(before) != _managed_view(after):
                changed.append(f"{obj['kind']}/{meta['name']}")
        return changed


def _managed_view(obj: dict[str, Any]) -> Any:
    """The parts of an object gitops-lab sets, to tell whether an apply changed it."""
    meta = obj.get("metadata", {})
    return (
        meta.get("labels"),
        {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("kubectl.")},
        obj.get("spec"),
        obj.get("data"),
        obj.get("stringData"),
    )

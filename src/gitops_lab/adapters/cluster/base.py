"""What every cluster provider offers the `up` and `down` workflows.

A provider makes sure a cluster exists and says how to reach it (`ensure`),
deletes it (`delete`), and says whether it is there (`exists`). The kind
provider (kind.py) creates clusters on this machine's Docker; the
existing-cluster provider (existing.py) only uses one. `provider_for` in
this package chooses one; a new provider is a class here and a line there.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.reporter import Reporter


@dataclass(frozen=True)
class ClusterInfo:
    """Where a cluster is reached. ``created`` is False when it was reused."""

    name: str
    kubeconfig: Path | None  # None: the kubeconfig the Kubernetes client finds by itself
    context: str | None  # None: the kubeconfig's current context
    created: bool


@dataclass(frozen=True)
class LabPorts:
    """Host ports the lab needs, and the NodePorts they are mapped to on kind.

    The host side listens on 127.0.0.1 only. ``api_server`` None lets kind pick
    a free port for the Kubernetes API (nothing to clash with).
    """

    git_host: int = 8180
    git_node: int = 30080
    ui_host: int = 8443
    ui_node: int = 30443
    api_server: int | None = None

    def host_ports(self) -> dict[str, int]:
        """Each host port the lab binds, by what it is for (stable order)."""
        ports = {"Git server": self.git_host, "engine UI": self.ui_host}
        if self.api_server:
            ports["Kubernetes API"] = self.api_server
        return ports


class ClusterProvider(abc.ABC):
    """The interface `up`/`down` use; one implementation per kind of cluster."""

    name: str
    # The cluster runs on this machine's Docker: `up` checks the machine first and can preload images.
    runs_here: bool = False
    # What `down` tells the user about a cluster it leaves in place.
    kept_note: str = ""

    @abc.abstractmethod
    def ensure(self, reporter: Reporter, recreate: bool = False) -> ClusterInfo:
        """Make sure the cluster exists and is reachable; create or reuse it."""

    @abc.abstractmethod
    def delete(self, reporter: Reporter) -> bool:
        """Delete the cluster. False when there was nothing to delete."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether the cluster is there (running or not)."""

    @property
    def ports(self) -> LabPorts | None:
        """Host ports mapped into the cluster (the Git server's, the engine UI's), if the provider maps any."""
        return None

    def use_local_tags(self, refs: list[str]) -> None:
        """Pinned images this machine's Docker holds only by their tag (pulled offline, from an archive):
        a provider that makes nodes from one of them uses the tag."""
        return None

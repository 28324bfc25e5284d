"""A cluster that is already running somewhere: `up` uses it as its kubeconfig says, `down` leaves it."""

from __future__ import annotations

from pathlib import Path

from gitops_lab.adapters.cluster.base import ClusterInfo, ClusterProvider
from gitops_lab.reporter import Reporter


class ExistingCluster(ClusterProvider):
    """The cluster of ``kubeconfig``/``context`` (None: the Kubernetes client's defaults)."""

    name = "existing"
    kept_note = (
        "the existing cluster was left as it is; its engine still syncs the lab namespaces "
        "until you delete the lab's Applications or Kustomizations"
    )

    def __init__(self, env_name: str, kubeconfig: str | None = None, context: str | None = None):
        self.env_name = env_name
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.context = context

    def ensure(self, reporter: Reporter, recreate: bool = False) -> ClusterInfo:
        """Nothing to create: connecting (the next step of `up`) checks that it answers."""
        return ClusterInfo(self.env_name, self.kubeconfig, self.context, created=False)

    def delete(self, reporter: Reporter) -> bool:
        """Never deleted: the cluster is not the lab's to delete."""
        return False

    def exists(self) -> bool:
        return True

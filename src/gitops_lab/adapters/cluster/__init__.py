"""Cluster providers: kind (creates a cluster on this machine) and existing (uses one)."""

from __future__ import annotations

from pathlib import Path

from gitops_lab.adapters.cluster.base import ClusterInfo, ClusterProvider, LabPorts
from gitops_lab.errors import UsageError

PROVIDERS = ("kind", "existing")

__all__ = ["PROVIDERS", "ClusterInfo", "ClusterProvider", "LabPorts", "provider_for"]


def provider_for(
    provider: str,
    env_name: str,
    state_dir: Path,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    retain: bool = False,
    merge_kubeconfig: bool = False,
    registry_mirrors: dict[str, str] | None = None,
) -> ClusterProvider:
    """The provider named ``provider`` for the lab environment ``env_name``.

    kind keeps its kubeconfig and config under ``state_dir`` and reads the kind-only
    settings; existing reaches the cluster of ``kubeconfig``/``context``.
    """
    # Start-up: --help reads this package for its choices; a provider's module loads only when chosen.
    if provider == "kind":
        from gitops_lab.adapters.cluster.kind_config import KindSettings
        from gitops_lab.adapters.cluster.kind_provider import KindCluster

        settings = KindSettings(
            name=env_name,
            retain=retain,
            merge_kubeconfig=merge_kubeconfig,
            registry_mirrors=dict(registry_mirrors or {}),
        )
        return KindCluster(settings, state_dir)
    if provider == "existing":
        from gitops_lab.adapters.cluster.existing import ExistingCluster

        return ExistingCluster(env_name, kubeconfig, context)
    raise UsageError(f"unknown cluster provider {provider!r}", fix=f"use one of: {', '.join(PROVIDERS)}")

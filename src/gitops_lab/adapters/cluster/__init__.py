"""Cluster providers: kind (creates a local cluster) and, beside it, existing clusters."""

from gitops_lab.adapters.cluster.base import ClusterInfo, ClusterProvider, LabPorts

__all__ = ["ClusterInfo", "ClusterProvider", "LabPorts"]

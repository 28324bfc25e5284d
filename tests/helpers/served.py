"""What an environment's Deployment serves on a test cluster, read from Kubernetes."""

from __future__ import annotations

NAMESPACES = {"dev": "ml-dev", "staging": "ml-staging", "prod": "ml-prod"}
LABEL = "gitops-lab.io/model-version"


def running(apps, env: str) -> tuple[str, int, int]:
    """(model version on the pod template, ready replicas, desired replicas) of env's Deployment."""
    dep = apps.read_namespaced_deployment("model-server", NAMESPACES[env])
    return dep.spec.template.metadata.labels[LABEL], dep.status.ready_replicas or 0, dep.spec.replicas

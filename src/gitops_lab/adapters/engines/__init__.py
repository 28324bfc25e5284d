"""GitOps engines behind one interface: Argo CD and Flux."""

from __future__ import annotations

from gitops_lab.errors import UsageError

ENGINES = ("argocd", "flux")


def engine_for(name: str, kube=None, tenant: str | None = None):
    """The adapter for ``name`` ("argocd" or "flux") on the cluster ``kube``.

    Without ``kube`` it can only prepare manifests (for `gitops-lab images`).
    ``tenant`` names a classroom learner whose objects the adapter reads and writes.
    """
    # Start-up: --help reads this package for its choices; an engine's module loads only when chosen.
    if name == "argocd":
        from gitops_lab.adapters.engines.argocd import ArgoCD

        return ArgoCD(kube, tenant)
    if name == "flux":
        from gitops_lab.adapters.engines.flux import Flux

        return Flux(kube, tenant)
    raise UsageError(f"unknown engine {name!r}", fix=f"use one of: {', '.join(ENGINES)}")

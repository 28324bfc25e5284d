"""Clean the testbed cluster between engines: what `up` (and `secrets init`) registered, and the lab namespaces.

Shared by the end-to-end tests (engines, labs): each engine starts on a clean
cluster and never fights another over the lab namespaces.
"""

from __future__ import annotations

from helpers.served import NAMESPACES

from gitops_lab.adapters.engines.base import SOPS_KEY_SECRET


def cleanup(cluster, engine: str) -> None:
    """Remove what `up` registered and the lab namespaces, so the next engine starts clean."""
    from kubernetes import client, watch

    with cluster.api_client() as api:
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        if engine == "argocd":
            for env in NAMESPACES:
                ignore_404(
                    custom.delete_namespaced_custom_object,
                    "argoproj.io",
                    "v1alpha1",
                    "argocd",
                    "applications",
                    f"gitops-lab-{env}",
                )
        else:
            for env in NAMESPACES:
                ignore_404(
                    custom.delete_namespaced_custom_object,
                    "kustomize.toolkit.fluxcd.io",
                    "v1",
                    "flux-system",
                    "kustomizations",
                    f"gitops-lab-{env}",
                )
                ignore_404(
                    custom.delete_namespaced_custom_object,
                    "source.toolkit.fluxcd.io",
                    "v1",
                    "flux-system",
                    "gitrepositories",
                    f"gitops-lab-{env}",
                )
        # `secrets init`'s key (the secrets lab makes it): with it there, the next `up` registers the
        # environments with decryption already on.
        ignore_404(core.delete_namespaced_secret, SOPS_KEY_SECRET, "argocd" if engine == "argocd" else "flux-system")
        for ns in NAMESPACES.values():
            ignore_404(core.delete_namespace, ns)
        for ns in NAMESPACES.values():
            try:
                current = core.read_namespace(ns)
            except client.ApiException as exc:
                if exc.status == 404:
                    continue
                raise
            assert current.metadata is not None  # a read object always has metadata
            stream = watch.Watch()
            for event in stream.stream(
                core.list_namespace,
                field_selector=f"metadata.name={ns}",
                resource_version=current.metadata.resource_version,
                timeout_seconds=90,
            ):
                if event["type"] == "DELETED":
                    stream.stop()


def ignore_404(fn, *args):
    from kubernetes import client

    try:
        fn(*args)
    except client.ApiException as exc:
        if exc.status != 404:
            raise

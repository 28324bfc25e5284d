"""Apply an engine's manifests and wait until it can work: CRDs Established,
controllers Available. Shared by the Argo CD and Flux adapters."""

from __future__ import annotations

from typing import Any

from gitops_lab.kube.apply import Applier
from gitops_lab.deadline import Deadline
from gitops_lab.kube.rollout import rollout_verdict
from gitops_lab.kube.wait import Verdict, wait_for
from gitops_lab.reporter import Reporter

_FIRST = ("CustomResourceDefinition", "Namespace")
_POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def start_from_local_images(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every container pulls only when its image is missing (IfNotPresent).

    Upstream manifests set `imagePullPolicy: Always` on some containers (Argo CD
    on four the lab keeps), which makes the kubelet ask the registry even when
    `--preload` already put the image in the node: offline, such a pod never starts.
    """
    for obj in objects:
        if obj.get("kind") not in _POD_TEMPLATE_KINDS:
            continue
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                container["imagePullPolicy"] = "IfNotPresent"
    return objects


def apply_in_order(
    applier: Applier, objects: list[dict[str, Any]], reporter: Reporter, deadline: Deadline
) -> list[str]:
    """CRDs and namespaces first (and wait for the CRDs), then everything else.

    Returns "Kind/name" of the objects that changed (none on a re-run).
    """
    first = [o for o in objects if o.get("kind") in _FIRST]
    rest = [o for o in objects if o.get("kind") not in _FIRST]
    with reporter.step(f"Applying {len(first)} CRDs and namespaces") as step:
        changed = applier.apply_changed(first)
        for crd in (o for o in first if o["kind"] == "CustomResourceDefinition"):
            step.update(f"waiting for {crd['metadata']['name']}")
            wait_crd_established(applier, crd["metadata"]["name"], deadline)
        step.done(f"{len(changed)} changed")
    with reporter.step(f"Applying {len(rest)} objects") as step:
        changed += applier.apply_changed(rest)
        step.done(f"{len(changed)} changed in all")
    return changed


def crd_verdict(crd: dict[str, Any] | None) -> Verdict:
    if crd is None:
        return False, "the CRD does not exist"
    for condition in crd.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == "Established":
            return condition.get("status") == "True", f"Established={condition.get('status')}"
    return False, "no Established condition yet"


def wait_crd_established(applier: Applier, name: str, deadline: Deadline) -> None:
    wait_for(
        applier,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        name,
        None,
        crd_verdict,
        deadline,
        f"CRD {name} to be Established",
    )


def wait_deployments_available(
    applier: Applier, namespace: str, names: list[str], reporter: Reporter, deadline: Deadline
) -> None:
    with reporter.step(f"Waiting up to {deadline.describe()} for {len(names)} controllers in {namespace}") as step:
        for name in names:
            step.update(f"{name}")

            def progress(seen: str, name: str = name) -> None:
                step.update(f"{name}: {seen}")

            wait_for(
                applier,
                "apps/v1",
                "Deployment",
                name,
                namespace,
                rollout_verdict,
                deadline,
                f"Deployment {namespace}/{name} to be Available",
                on_progress=progress,
            )

"""When a Deployment has rolled out, in the words a person reads."""

from __future__ import annotations

from typing import Any

from gitops_lab.kube.wait import Verdict


def rollout_verdict(dep: dict[str, Any] | None, label: str | None = None, value: str | None = None) -> Verdict:
    """Rolled out: observedGeneration >= generation, and updated, ready and
    available replicas equal the desired replicas with no old ones left.
    With ``label``/``value``, the pod template must also carry that label value.
    """
    if dep is None:
        return False, "the Deployment does not exist"
    spec, status = dep.get("spec", {}), dep.get("status", {}) or {}
    meta = dep.get("metadata", {})
    want = spec.get("replicas", 1)
    if label:
        running = spec.get("template", {}).get("metadata", {}).get("labels", {}).get(label)
        if running != value:
            return False, f"the pod template has {label}={running}, not {value}"
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        return False, "the Deployment controller has not observed the latest change yet"
    for condition in status.get("conditions", []) or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return False, f"rollout stuck: {condition.get('message', 'progress deadline exceeded')}"
    updated = status.get("updatedReplicas", 0)
    ready = status.get("readyReplicas", 0)
    available = status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    if updated < want:
        return False, f"{updated} of {want} replicas updated"
    if total > updated:
        return False, f"{total - updated} old replicas still terminating"
    if ready < want or available < want:
        return False, f"{ready} of {want} replicas ready"
    return True, f"{ready}/{want} replicas ready"

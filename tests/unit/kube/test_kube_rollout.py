"""When a Deployment counts as rolled out (the third condition of a promotion)."""

from __future__ import annotations

import pytest

from gitops_lab.kube.rollout import rollout_verdict

LABEL = "gitops-lab.io/model-version"


def dep(replicas=2, generation=3, observed=3, updated=2, ready=2, available=2, total=2, version="v2", stuck=False):
    conditions = (
        [{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "timed out progressing"}]
        if stuck
        else []
    )
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {LABEL: version}}}},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "replicas": total,
            "conditions": conditions,
        },
    }


@pytest.mark.parametrize(
    "obj,ok,words",
    [
        (dep(), True, "2/2 replicas ready"),
        (None, False, "does not exist"),
        (dep(version="v1"), False, "pod template has gitops-lab.io/model-version=v1, not v2"),
        (dep(observed=2), False, "not observed the latest change"),
        (dep(updated=1, total=3), False, "1 of 2 replicas updated"),
        (dep(total=3), False, "1 old replicas still terminating"),
        (dep(ready=1, available=1), False, "1 of 2 replicas ready"),
        (dep(stuck=True), False, "rollout stuck: timed out progressing"),
    ],
)
def test_rollout_verdict(obj, ok, words):
    verdict, seen = rollout_verdict(obj, LABEL, "v2")
    assert verdict is ok
    assert words in seen


def test_without_a_label_any_template_counts():
    assert rollout_verdict(dep(version="v9"))[0] is True

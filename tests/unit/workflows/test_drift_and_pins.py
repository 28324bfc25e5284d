"""Configuration drift beyond the model version, and image digests that must exist (issue 14).

`status` and the lab checks share git_expectation and drift; the fix-policy
check refuses a digest nobody ships and no pod runs.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import yaml
from helpers.gitutil import git

from gitops_lab.adapters.engines.base import EngineStatus
from gitops_lab.adapters.images import environment_images
from gitops_lab.labs.actions.checks import image_problems
from gitops_lab.resources import environments_template
from gitops_lab.versions import pinned, pinned_images
from gitops_lab.workflows.environment import LabEnvironment
from gitops_lab.workflows.status import environment_reports

SHIPPED = pinned()["images"]["model_server"]
ZERO = SHIPPED.split("@")[0] + "@sha256:" + "0" * 64


def rendered_deployment(wc, env: str) -> dict:
    """The Deployment as the engine would apply it from the seeded overlay, rolled out."""
    dep = yaml.safe_load((wc / "base" / "deployment.yaml").read_text())
    overlay = yaml.safe_load((wc / "overlays" / env / "kustomization.yaml").read_text())
    dep["spec"]["replicas"] = overlay["replicas"][0]["count"]
    dep["spec"]["template"]["metadata"]["labels"].update(overlay["labels"][0]["pairs"])
    dep["metadata"]["generation"] = 1
    count = dep["spec"]["replicas"]
    dep["status"] = {
        "observedGeneration": 1,
        "replicas": count,
        "updatedReplicas": count,
        "readyReplicas": count,
        "availableReplicas": count,
    }
    return dep


class FakeEngine:
    name = "flux"

    def __init__(self, head: str, live: dict[str, dict]):
        self.head, self.live = head, live
        self.applier = SimpleNamespace(get=lambda api, kind, name, ns: self.live.get(ns))

    def status(self, env: str) -> EngineStatus:
        return EngineStatus(env, self.name, self.head, True, True, "Applied", "Ready")


def reports_with(wc, change) -> dict:
    head = git(wc, "rev-parse", "HEAD")
    live = {f"ml-{env}": rendered_deployment(wc, env) for env in ("dev", "staging", "prod")}
    change(live["ml-prod"])
    # status reads only the engine and the working copy: no state, no cluster
    lab = LabEnvironment(state=None, kube=None, engine=FakeEngine(head, live), repo=wc)  # type: ignore[arg-type]
    return {r.environment: r for r in environment_reports(lab)}


def test_status_reports_replica_drift_with_the_fix(lab):
    wc, _ = lab
    reports = reports_with(wc, lambda dep: dep["spec"].update(replicas=4))
    prod = reports["prod"]
    assert not prod.ok and prod.drift == ["4 replicas live, 2 in Git"]
    assert "drift: 4 replicas live, 2 in Git; `gitops-lab sync --env prod` puts Git's state back" in prod.message
    assert reports["staging"].ok and reports["dev"].ok


def test_status_reports_image_and_version_drift(lab):
    wc, _ = lab

    def hand_edit(dep):
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = "python:latest"
        dep["spec"]["template"]["metadata"]["labels"]["gitops-lab.io/model-version"] = "v3"

    prod = reports_with(wc, hand_edit)["prod"]
    assert prod.drift == [
        "model version v3 live, v1 in Git",
        f"container model-server image python:latest live, {SHIPPED} in Git",
    ]
    assert not prod.ok


def test_the_image_the_seeded_environments_run_is_the_pin_and_the_image_check_accepts_it():
    # What `repo init` seeds (versions.yaml's pins filled in), read from the overlays, not the pin table.
    seeded = environment_images(environments_template())
    assert seeded == [SHIPPED]
    # Accepted before any pod runs it: the lab's image check must pass on a fresh seed.
    assert image_problems(deployment_with(seeded[0]), [], pinned_images()) == []


def deployment_with(image: str) -> dict:
    return {"spec": {"template": {"spec": {"containers": [{"name": "model-server", "image": image}]}}}}


def pod_running(image_id: str) -> dict:
    return {"status": {"containerStatuses": [{"name": "model-server", "imageID": image_id}]}}


def test_a_made_up_digest_is_refused_and_a_real_one_accepted():
    [problem] = image_problems(deployment_with(ZERO), [], pinned_images())
    assert "sha256:000000000000..." in problem and "would never pull" in problem
    assert image_problems(deployment_with(SHIPPED), [], pinned_images()) == []
    [tag] = image_problems(deployment_with("python:3.12-slim"), [], pinned_images())
    assert "not pinned by @sha256 digest" in tag


def test_a_digest_a_pod_reports_running_is_accepted():
    other = SHIPPED.split("@")[0] + "@sha256:" + "a" * 64
    running = pod_running("docker.io/library/python@sha256:" + "a" * 64)
    assert image_problems(deployment_with(other), [running], pinned_images()) == []
    assert image_problems(deployment_with(ZERO), [copy.deepcopy(running)], pinned_images()) != []

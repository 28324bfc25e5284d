"""The release automation running in the cluster (issue 23, item 4), on real pods (the kind bed).

`up --release-automation` builds the automation's image from this package (the bed's wheels,
offline), loads it into kind, grants its Roles and pushes its Deployment to automation/, which the
engine syncs. Then a learner's plain `git push` of v5 to dev, with prod's approval in the same
push, and no gitops-lab process on the host: the pod promotes v5 through staging to prod, prod's
verification fails (prod's own traffic), and the pod reverts prod with the evidence in the
commit's trailers. `release status` shows the pod, its Lease and its passes.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

NAME = "e2e-incluster"
UP_TIMEOUT = "900"
APPROVER = ("Rita Reviewer", "rita@example.com")


@pytest.fixture(scope="module", params=["flux", "argocd"])
def automated_env(request, kind_bed):
    engine = request.param
    name = f"{NAME}-{engine}"
    kind_bed.gitops_lab(
        "up",
        "--engine",
        engine,
        "--preload",
        "--engine-manifests",
        str(kind_bed.manifests),
        "--release-automation",
        "--timeout",
        UP_TIMEOUT,
        name=name,
    )
    yield kind_bed, name
    kind_bed.gitops_lab("down", name=name, check=False)


def _git(work: Path, env: dict, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(work), *args], check=True, env=env, capture_output=True, text=True, timeout=120
    ).stdout.strip()


def _wait_for(what: str, probe, timeout: float):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = probe()
        if last:
            return last
        time.sleep(3)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def _version(overlay: Path) -> str:
    return next(
        line.split(":", 1)[1].strip()
        for line in overlay.read_text().splitlines()
        if "gitops-lab.io/model-version:" in line
    )


def _automation(bed, name: str) -> dict:
    return bed.gitops_lab("release", "status", "--output", "json", name=name).json()["automation"]


def _gitops_lab_processes() -> list[str]:
    """The gitops-lab CLI processes running on this machine (the test starts none while it waits)."""
    found = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in found if "-m gitops_lab " in line and "--name e2e-incluster" in line]


def test_a_plain_push_of_v5_is_released_and_reverted_in_prod_by_the_pod(automated_env, tmp_path):
    bed, name = automated_env
    watching = _wait_for(
        "the automation's pod watching",
        lambda: (a := _automation(bed, name)) and a.get("state") == "watching" and a,
        420,
    )
    assert watching["pods"] and watching["pods"][0]["ready"], watching
    assert watching["pods"][0]["image"].startswith("gitops-lab.local/release-automation:")

    work, env, _ = bed.learner_clone(name, tmp_path / "learner")
    prod_before = _version(work / "overlays" / "prod" / "kustomization.yaml")  # the seed's: v1
    overlay = work / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace(f"model-version: {_version(overlay)}", "model-version: v5"))
    _git(work, env, "commit", "-qam", "Try v5 in dev")
    pushed = _git(work, env, "rev-parse", "HEAD")
    approval = "Approve v5 for prod\n\nGitops-Lab-Action: approve\nEnvironment: prod\nModel-Version: v5\n"
    approval += f"Approved-By: {APPROVER[0]}\n"
    approver = {**env, "GIT_AUTHOR_NAME": APPROVER[0], "GIT_AUTHOR_EMAIL": APPROVER[1]}
    _git(work, approver, "commit", "-q", "--allow-empty", "-m", approval)
    _git(work, env, "push", "-q", "origin", "HEAD:main")  # the only thing the learner does

    def rollback_in_git() -> str | None:
        assert not _gitops_lab_processes()  # nothing on the host acts: the pod does it all
        _git(work, env, "fetch", "-q", "origin")
        log = _git(
            work, env, "log", "--format=%H %(trailers:key=Gitops-Lab-Action,valueonly,separator=)", "origin/main"
        )
        return next((line.split()[0] for line in log.splitlines() if line.endswith(" rollback")), None)

    rollback = _wait_for("the pod's rollback of prod in Git", rollback_in_git, 900)
    message = _git(work, env, "log", "-1", "--format=%B", rollback)
    assert "Environment: prod" in message and f"Model-Version: {prod_before}" in message, message
    assert "Previous-Version: v5" in message
    assert "Rolled-Back-By: gitops-lab release (automatic)" in message
    assert f"Release-Trigger: {pushed}" in message
    assert "Verify-Accuracy: fail (live accuracy 0.6842 < 0.7776" in message, message
    assert "Verify-Pods: pass (2/2 ready" in message
    # staging took v5 first, promoted by the pod with dev's verification as evidence
    staging = _git(work, env, "log", "-1", "--format=%B", "origin/main", "--", "overlays/staging")
    assert "Model-Version: v5" in staging and f"Release-Trigger: {pushed}" in staging

    served = _wait_for(
        f"prod serving {prod_before} again",
        lambda: (
            (
                s := {
                    r["environment"]: r
                    for r in bed.gitops_lab("status", "--output", "json", name=name, check=False).json()
                }
            )
            and s["prod"]["version"] == prod_before
            and s["prod"]["ok"]
            and s
        ),
        300,
    )
    assert served["staging"]["version"] == "v5"  # only prod's traffic shows the fault

    status = bed.gitops_lab("release", "status", "--output", "json", name=name).json()
    [last] = [a for a in status["actions"] if a["commit"] == rollback]
    assert last["reason"].startswith("verification failed: accuracy")
    # the pass ends once prod serves the previous version again: then the Lease is free, nothing left to resume
    automation = _wait_for(
        "the pod's pass to end",
        lambda: (a := _automation(bed, name)) and a["state"] == "watching" and a["lease"]["holder"] is None and a,
        300,
    )
    assert automation["lease"]["acting"] is None
    assert any("prod serving v5 failed verification" in (p.get("error") or "") for p in automation["passes"])
    shown = bed.gitops_lab("release", "status", name=name).stdout
    assert "in-cluster automation: release-automation-" in shown and "Running ready" in shown

    # the assessment's evidence: the pod's promotion and rollback, with their verification, in `lab report`
    [learner] = bed.gitops_lab("lab", "report", "--output", "json", name=name).json()["learners"]
    steps = {s["commit"]: s for s in learner["releases"]}
    assert steps[rollback]["action"] == "rollback" and steps[rollback]["environment"] == "prod", steps
    assert steps[rollback]["verdict"] == "fail" and learner["verdicts"]["automated-release"]["status"] == "passed"


def test_the_capstone_lab_passes_lab_test_with_the_pod_doing_the_releases(automated_env, tmp_path):
    """`lab solve` runs no watch here: its hooks wait for the pod (labs/release-automation/automation.py).
    Flux only, to keep the suite lean (Argo CD's capstone runs in test_kind_e2e.py's `lab test --all`)."""
    bed, name = automated_env
    if name.endswith("argocd"):
        pytest.skip("the capstone with the pod runs once, on Flux; Argo CD's runs with the watch in test_kind_e2e.py")
    junit = tmp_path / "capstone.xml"
    run = bed.gitops_lab(
        "lab",
        "test",
        "release-automation",
        "--engine",
        "flux",
        "--junit",
        str(junit),
        name=name,
        check=False,
        timeout=2400,
    )
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-6000:]}"
    text = junit.read_text()
    assert 'failures="0"' in text and text.count("<testcase") == 4  # three steps and the reset
    # the pod made the rollbacks, not a watch on the host: its passes name them
    passes = _automation(bed, name)["passes"]
    assert sum("failed verification" in (p.get("error") or "") for p in passes) >= 2, passes

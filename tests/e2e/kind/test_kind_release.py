"""Verification and the automatic rollback end to end, on real pods (the kind bed).

One environment (Flux; the capstone lab runs for both engines in
test_kind_e2e.py's `lab test --all`):
- `verify` checks what each environment serves through the API server's proxy:
  the pods, /version, live accuracy, and /metrics under load;
- with `release --watch` running in the background, a learner's `git push` of
  v4 to dev (through http://localhost:8180, no command typed) is deployed by
  the engine, fails verification on accuracy, is reverted in Git with its
  evidence, and the engine restores v2;
- `release` takes v2 to prod once approved, verified at every stage;
- v5 passes dev's and staging's verification (held-out rows) and fails prod's,
  which replays prod's own traffic: the release reverts prod's promotion and
  prod serves v2 again;
- the capstone lab passes `lab test` (Argo CD: in test_kind_e2e.py's `lab test --all`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from kindbed.fixtures import interrupt, wait_for_line

NAME = "e2e-release"
UP_TIMEOUT = "900"


@pytest.fixture(scope="module")
def release_env(kind_bed):
    kind_bed.gitops_lab(
        "up",
        "--engine",
        "flux",
        "--preload",
        "--engine-manifests",
        str(kind_bed.manifests),
        "--timeout",
        UP_TIMEOUT,
        "--output",
        "json",
        name=NAME,
    )
    yield kind_bed
    kind_bed.gitops_lab("down", name=NAME, check=False)


def _learner_clone(bed, tmp_path: Path) -> tuple[Path, dict]:
    work, env, _ = bed.learner_clone(NAME, tmp_path / "learner")
    return work, env


def _history(bed, env: str) -> list[dict]:
    return bed.gitops_lab("history", "--env", env, "--output", "json", name=NAME).json()


def test_verify_checks_every_environment_on_real_pods(release_env):
    for env, replicas in (("dev", 1), ("prod", 2)):
        run = release_env.gitops_lab("verify", "--env", env, "--output", "json", name=NAME)
        report = run.json()
        assert report["passed"] is True, report
        checks = {c["name"]: c for c in report["checks"]}
        assert checks["pods"]["summary"] == f"{replicas}/{replicas} ready, 0 restart(s)"
        assert checks["version"]["summary"] == f"{replicas} of {replicas} serve {report['version']}"
        assert "through the API server's proxy" in report["where"]


def test_a_learners_push_of_v4_is_verified_reverted_and_restored(release_env, tmp_path):
    bed = release_env
    watch = bed.start("release", "--watch", "--interval", "1", "--timeout", "600", name=NAME)
    try:
        wait_for_line(watch, "watching", 120)
        work, env = _learner_clone(bed, tmp_path)
        overlay = work / "overlays" / "dev" / "kustomization.yaml"
        overlay.write_text(
            overlay.read_text().replace("gitops-lab.io/model-version: v2", "gitops-lab.io/model-version: v4")
        )
        subprocess.run(["git", "-C", str(work), "commit", "-qam", "Try v4 in dev"], check=True, env=env)
        subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"], check=True, env=env, timeout=120)
        pushed = subprocess.run(
            ["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        lines = wait_for_line(watch, "dev serves v2 again", 600)
    finally:
        interrupt(watch)
    text = "".join(lines)
    assert "dev serving v4 failed verification: accuracy (live accuracy 0.5172" in text, text[-3000:]
    [rollback] = [e for e in _history(bed, "dev") if e["action"] == "rollback"][:1]
    assert rollback["version"] == "v2" and rollback["previous"] == "v4" and rollback["reverts"] == pushed
    assert rollback["trailers"]["Rolled-Back-By"] == "gitops-lab release (automatic)"
    assert rollback["trailers"]["Verify-Accuracy"].startswith("fail (live accuracy 0.5172")
    assert rollback["trailers"]["Verify-Pods"].startswith("pass (1/1 ready")
    status = {row["environment"]: row for row in bed.gitops_lab("status", "--output", "json", name=NAME).json()}
    assert status["dev"]["version"] == "v2" and status["dev"]["ok"] is True


def test_release_takes_v2_to_prod_verified_at_every_stage(release_env):
    bed = release_env
    blocked = bed.gitops_lab("release", "--output", "json", name=NAME, check=False)
    assert blocked.returncode == 4
    assert [s["outcome"] for s in blocked.json()["stages"]] == ["verified", "verified", "awaiting-approval"]
    bed.gitops_lab("approve", "--env", "prod", "--version", "v2", "--by", "Rita <rita@example.com>", name=NAME)
    done = bed.gitops_lab("release", "--output", "json", name=NAME).json()
    assert done["complete"] is True
    assert [(s["environment"], s["outcome"]) for s in done["stages"]] == [
        ("dev", "verified"),
        ("staging", "verified"),
        ("prod", "verified"),
    ]
    promoted = _history(bed, "prod")[0]
    assert promoted["action"] == "promote" and promoted["version"] == "v2"
    assert promoted["trailers"]["Verify-Accuracy"].startswith("pass (live accuracy 0.8276")
    verified = bed.gitops_lab("verify", "--env", "prod", "--output", "json", name=NAME).json()
    assert verified["passed"] is True and verified["version"] == "v2"
    assert json.dumps(verified).count("2/2 ready") == 1


def test_v5_passes_dev_and_staging_and_is_rolled_back_in_prod_on_real_pods(release_env, tmp_path):
    bed = release_env
    work, env = _learner_clone(bed, tmp_path)
    overlay = work / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(
        overlay.read_text().replace("gitops-lab.io/model-version: v2", "gitops-lab.io/model-version: v5")
    )
    subprocess.run(["git", "-C", str(work), "commit", "-qam", "Try v5 in dev"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"], check=True, env=env, timeout=120)
    blocked = bed.gitops_lab("release", "--output", "json", name=NAME, check=False)
    assert blocked.returncode == 4, blocked.stderr[-3000:]
    stages = blocked.json()["stages"]
    assert [s["outcome"] for s in stages] == ["verified", "verified", "awaiting-approval"]
    assert "accuracy pass" in stages[0]["summary"] and "accuracy pass" in stages[1]["summary"]
    bed.gitops_lab("approve", "--env", "prod", "--version", "v5", "--by", "Rita <rita@example.com>", name=NAME)
    failed = bed.gitops_lab("release", name=NAME, check=False)
    assert failed.returncode == 4, failed.stderr[-3000:]
    assert "prod serving v5 failed verification: accuracy (live accuracy 0.6842 < 0.7776" in failed.stderr
    assert "rolled back to v2" in failed.stderr and "prod serves v2 again" in failed.stderr
    rollback = _history(bed, "prod")[0]
    assert rollback["action"] == "rollback" and (rollback["previous"], rollback["version"]) == ("v5", "v2")
    assert rollback["trailers"]["Verify-Pods"].startswith("pass (2/2 ready")
    status = {row["environment"]: row for row in bed.gitops_lab("status", "--output", "json", name=NAME).json()}
    assert (status["prod"]["version"], status["prod"]["ok"]) == ("v2", True)
    assert status["staging"]["version"] == "v5"  # only prod's traffic shows the fault


def test_the_capstone_lab_passes_lab_test_on_real_pods(release_env, tmp_path):
    junit = tmp_path / "capstone.xml"
    run = release_env.gitops_lab(
        "lab",
        "test",
        "release-automation",
        "--engine",
        "flux",
        "--junit",
        str(junit),
        name=NAME,
        check=False,
        timeout=2400,
    )
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    text = junit.read_text()
    assert 'failures="0"' in text and 'skipped="0"' in text
    assert text.count("<testcase") == 4  # three steps and the reset

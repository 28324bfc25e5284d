"""The platform pipeline's stages (python -m gitops_lab.pipeline), run for real on a seeded lab repository,
and the platform repository they come with (ml-platform-pipelines at v1.0.0)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import yaml
from helpers.gitutil import git

from gitops_lab.adapters.repo.platform import seed_platform
from gitops_lab.pipeline.stages import STAGES

SRC = Path(__file__).resolve().parents[1] / "src"


def stage(wc: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("MODEL_SERVER_URL", None)
    env.pop("GITOPS_LAB_KUBECONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "gitops_lab.pipeline", name, *args],
        cwd=wc,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_stages_hand_each_other_artifacts_and_release_says_skipped_without_a_target(lab):
    wc, _ = lab
    for name in STAGES:
        result = stage(wc, name)
        out = result.stdout + result.stderr
        expected = "skipped" if name == "release" else "pass"
        assert result.returncode == 0 and f"STAGE {name}: {expected}" in out, out[-3000:]
    assert (wc / "ci-artifacts" / "data" / "dataset.json").is_file()
    assert (wc / "ci-artifacts" / "model" / "v2.json").read_bytes() == (wc / "base/models/v2.json").read_bytes()
    release = ET.parse(wc / "ci-artifacts" / "junit" / "release.xml").getroot()
    assert release.get("skipped") == "1" and release.get("failures") == "0"
    integration = ET.parse(wc / "ci-artifacts" / "junit" / "integration-tests.xml").getroot()
    assert int(integration.get("tests")) == 4 and integration.get("failures") == "0"


def test_a_drifted_model_fails_data_validation(lab):
    wc, _ = lab
    path = wc / "overlays" / "dev" / "kustomization.yaml"
    path.write_text(path.read_text().replace("model-version: v2", "model-version: v3"))
    git(wc, "commit", "-qam", "Try v3")
    assert stage(wc, "data-preparation").returncode == 0
    result = stage(wc, "data-validation")
    assert result.returncode == 1
    assert "STAGE data-validation: FAIL" in result.stdout and "temperature_c drift" in result.stdout + result.stderr


def test_a_model_a_custom_gate_rejects_fails_evaluation_and_passes_without_it(lab):
    """v6 is good overall and bad on cool pumps: the built-in gates let it through; the segment gate
    the team requires for staging (gates.yaml `custom:`) stops it at the evaluation stage."""
    wc, _ = lab
    path = wc / "overlays" / "dev" / "kustomization.yaml"
    path.write_text(path.read_text().replace("model-version: v2", "model-version: v6"))
    git(wc, "commit", "-qam", "Try v6")
    for name in ("data-preparation", "training"):
        assert stage(wc, name).returncode == 0, name
    result = stage(wc, "evaluation")
    assert result.returncode == 0 and "STAGE evaluation: pass" in result.stdout, result.stdout[-3000:]

    gates = yaml.safe_load((wc / "gates.yaml").read_text())
    gates["custom"] = {
        "segment-accuracy": {
            "command": ["{python}", "ci/gates/segment_accuracy.py", "--artifact", "{artifact}"]
            + ["--feature", "temperature_c", "--bands", "60,75", "--min-accuracy", "0.65"],
        }
    }
    gates["required"]["staging"].append("segment-accuracy")
    (wc / "gates.yaml").write_text(yaml.safe_dump(gates, sort_keys=False))
    git(wc, "commit", "-qam", "Require the segment gate for staging")
    result = stage(wc, "evaluation")
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "STAGE evaluation: FAIL" in result.stdout, out[-3000:]
    assert "temperature_c < 60: accuracy 0.5789 < 0.65" in out


def test_a_stage_without_its_handoff_fails_and_a_stage_left_out_says_skipped(lab):
    wc, _ = lab
    result = stage(wc, "evaluation")
    assert result.returncode == 1 and "model/v2.json is missing: the training stage writes it" in result.stdout
    result = stage(wc, "training", "--only", "data-preparation,evaluation")
    assert result.returncode == 0 and "STAGE training: skipped (not among the stages" in result.stdout
    assert stage(wc, "training", "--only", "nope").returncode == 2


def test_the_platform_repository_is_released_at_v1_0_0_with_pinned_reusable_templates(tmp_path):
    remote = tmp_path / "ml-platform-pipelines.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    assert seed_platform(str(remote)) == "seeded"
    assert seed_platform(str(remote)) == "reused"

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", str(remote), "show", f"v1.0.0:{path}"], capture_output=True, text=True, check=True
        ).stdout

    workflow = yaml.safe_load(show(".github/workflows/ml-pipeline.yml"))
    call = workflow[True]["workflow_call"]  # PyYAML reads the key `on` as True
    assert {"python-version", "runner-labels", "stages", "tooling-source"} <= set(call["inputs"])
    assert call["inputs"]["tooling-source"]["required"] is True
    assert set(STAGES) <= set(call["outputs"])
    # runners.yml is read at platform-ref (a called workflow has no context naming its own ref): the release's tag.
    assert call["inputs"]["platform-ref"]["default"] == "v1.0.0"
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    spec, jobs = yaml.safe_load_all(show("templates/ml-pipeline.yml"))
    assert {"stage", "stages", "image", "runner-tags", "tooling-source"} <= set(spec["spec"]["inputs"])
    assert re.search(r"@sha256:[0-9a-f]{64}$", spec["spec"]["inputs"]["image"]["default"])
    assert "stages" not in jobs
    assert sorted(name for name in jobs if not name.startswith(".")) == sorted(f"ml-pipeline-{s}" for s in STAGES)
    runners = yaml.safe_load(show("runners.yml"))[".ml-platform-runner"]
    assert runners["image"] == spec["spec"]["inputs"]["image"]["default"]
    assert runners["tags"] == spec["spec"]["inputs"]["runner-tags"]["default"]
    requests = {k: v for k, v in runners["variables"].items() if k.startswith("KUBERNETES_")}
    assert requests and requests.items() <= jobs[".ml-pipeline-job"]["variables"].items()


def test_repo_init_seeds_the_platform_repository_and_names_a_missing_one(tmp_path, cli):
    remote, platform = tmp_path / "lab.git", tmp_path / "ml-platform-pipelines.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(remote)], check=True)
    result = cli("repo", "init", str(tmp_path / "wc"), "--remote", str(remote), "--platform-remote", str(platform))
    assert result.exit_code != 0
    assert f"the remote {platform} is not a Git repository" in result.stderr and "git init --bare" in result.stderr
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(platform)], check=True)
    result = cli("repo", "init", str(tmp_path / "wc"), "--remote", str(remote), "--platform-remote", str(platform))
    assert result.exit_code == 0, result.output
    assert f"Platform repository {platform}: seeded (tag v1.0.0)" in result.stdout
    tags = subprocess.run(["git", "ls-remote", "--tags", str(platform)], capture_output=True, text=True).stdout
    assert "refs/tags/v1.0.0" in tags

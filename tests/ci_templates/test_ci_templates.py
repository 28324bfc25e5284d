"""The learners' CI templates in the seeded repository, run for real.

- GitLab CI (ci/gitlab/model-ci.yml, included by ci/examples/gitlab-ci.yml) with
  gitlab-ci-local and its shell executor;
- GitHub Actions (the reusable .github/workflows/model-ci.yml, called by
  ci/examples/github-ci.yml) with act on the host runner
  (`-P ubuntu-latest=-self-hosted`). The only remote action, actions/checkout,
  is not fetched: act copies the repository under test in its place;
- actionlint on every workflow.

Each pipeline runs green on a good change (and its release stage really
verifies a model server, run as a local process), and red on a bad model.
The tools come from PATH or from ~/.cache/gitops-lab-ci-tools (installed by
scripts/install-ci-tools); without them these tests skip, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.ci_tools import act_push, tool
from helpers.gitutil import git
from helpers.osvdb import build_osv_db
from helpers.renderer import needs_kustomize

from gitops_lab.gates.vuln_scan import DB_VAR

REPO_ROOT = REPO
STAGES = ["unit-tests", "data-validation", "training", "evaluation-gates", "security", "release"]
# A pipeline runs every stage on 2 shared cores; only a bound for a hung tool, no assertion is about time.
TOOL_TIMEOUT = 600


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # The jobs find gitops-lab and the model package where this interpreter has them.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT)


@pytest.fixture(autouse=True)
def offline_advisories(tmp_path, monkeypatch) -> str:
    """The security stage's vuln-scan reads the tests' real OSV subset, not api.osv.dev (no network here)."""
    db = str(build_osv_db(tmp_path / "osv-db"))
    monkeypatch.setenv(DB_VAR, db)
    return f"{DB_VAR}={db}"


@pytest.fixture
def wired(lab):
    """The seeded working copy with both templates wired in, as the CI-template lab asks."""
    wc, _ = lab
    (wc / ".github" / "workflows" / "ci.yml").write_text((wc / "ci/examples/github-ci.yml").read_text())
    (wc / ".gitlab-ci.yml").write_text((wc / "ci/examples/gitlab-ci.yml").read_text())
    git(wc, "add", "-A")
    git(wc, "commit", "-qm", "Wire in the model CI")
    return wc


def set_dev(wc: Path, version: str) -> None:
    path = wc / "overlays" / "dev" / "kustomization.yaml"
    text = path.read_text()
    path.write_text(text.replace("gitops-lab.io/model-version: v2", f"gitops-lab.io/model-version: {version}"))
    git(wc, "commit", "-qam", f"Try {version} in dev")


def gitlab(wc: Path, *variables: str) -> subprocess.CompletedProcess:
    args = [tool("gitlab-ci-local"), "--force-shell-executor", "--no-color"]
    for variable in (*variables, f"{DB_VAR}={os.environ[DB_VAR]}"):
        args += ["--variable", variable]
    return run(args, wc)


def act(wc: Path, *env: str) -> subprocess.CompletedProcess:
    args = act_push()
    for item in (*env, f"{DB_VAR}={os.environ[DB_VAR]}"):
        args += ["--env", item]
    return run(args, wc)


def with_server(runner, wired: Path, start_server, version: str) -> tuple[int, str]:
    """Run a pipeline whose release stage verifies a model server serving ``version``."""
    server = start_server(version)
    result = runner(wired, f"MODEL_SERVER_URL=http://127.0.0.1:{server.port}")
    return result.returncode, result.stdout + result.stderr


def test_actionlint_accepts_every_workflow(wired):
    workflows = sorted((wired / ".github" / "workflows").glob("*.yml"))
    workflows += sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
    workflows += sorted((REPO_ROOT / "platform" / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) >= 4
    result = run([tool("actionlint"), "-no-color", *map(str, workflows)], wired)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(wired):
    broken = wired / ".github" / "workflows" / "ci.yml"
    broken.write_text(
        broken.read_text().replace(
            "uses: ./.github/workflows/model-ci.yml", "uses: ./.github/workflows/model-ci.yml\n    with:\n      nope: 1"
        )
    )
    result = run([tool("actionlint"), "-no-color", str(broken)], wired)
    assert result.returncode != 0


@needs_kustomize
def test_gitlab_pipeline_is_green_on_a_good_change_and_verifies_the_served_model(wired, start_server):
    code, out = with_server(gitlab, wired, start_server, "v2")
    assert code == 0, out[-4000:]
    for stage in STAGES:
        assert f"PASS  {stage}" in out, out[-4000:]
    assert "dev serving v2 passes verification" in out
    assert "Ran 3 tests" in out and "policy  pass" in out


@needs_kustomize
def test_gitlab_pipeline_is_red_on_a_bad_model_and_stops_at_data_validation(wired):
    set_dev(wired, "v3")
    result = gitlab(wired)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "FAIL  data-validation" in out, out[-4000:]
    assert "temperature_c drift" in out
    assert "PASS  training" not in out and "training         $" not in out  # later stages never ran


@needs_kustomize
def test_gitlab_pipeline_is_red_when_the_served_model_fails_verification(wired, start_server):
    set_dev(wired, "v4")  # passes every offline stage, serves skewed predictions
    code, out = with_server(gitlab, wired, start_server, "v4")
    assert code != 0
    for stage in STAGES[:-1]:
        assert f"PASS  {stage}" in out, out[-4000:]
    assert "release          finished in" in out and "FAIL 4" in out, out[-4000:]
    assert "dev serving v4 failed verification: accuracy" in out


@needs_kustomize
def test_github_workflow_is_green_on_a_good_change_and_verifies_the_served_model(wired, start_server):
    code, out = with_server(act, wired, start_server, "v2")
    assert code == 0, out[-4000:]
    for stage in STAGES:
        assert f"model-ci/{stage}" in out and "Job succeeded" in out, out[-4000:]
    assert out.count("🏁  Job succeeded") == len(STAGES)
    assert "dev serving v2 passes verification" in out


@needs_kustomize
def test_github_workflow_is_red_on_a_bad_model_and_stops_at_data_validation(wired):
    set_dev(wired, "v3")
    result = act(wired)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "temperature_c drift" in out
    assert "🏁  Job failed" in out
    assert "ci/run-stage train" not in out  # training never started


@needs_kustomize
def test_the_ci_template_lab_passes_lab_test_without_a_cluster(lab, cli):
    wc, remote = lab
    platform = remote.parent / "ml-platform-pipelines.git"  # beside the lab repository, as `up` serves it
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(platform)], check=True)
    result = cli("repo", "init", str(wc), "--remote", str(remote), "--platform-remote", str(platform))
    assert result.exit_code == 0, result.output
    result = cli("lab", "test", "ci-templates", "--repo", str(wc), "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True
    [labs] = data["labs"]
    assert [(c["step"], c["status"]) for c in labs["steps"]] == [
        ("call-the-platform", "passed"),
        ("own-unit-test", "passed"),
        ("data-check-blocks", "passed"),
        ("release-v1-1", "passed"),
        ("reset", "passed"),
    ]


@pytest.fixture
def platform_lab(lab, cli):
    """The lab working copy with the platform repository beside its remote, and the CI-template lab started."""
    wc, remote = lab
    platform = remote.parent / "ml-platform-pipelines.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(platform)], check=True)
    assert cli("repo", "init", str(wc), "--remote", str(remote), "--platform-remote", str(platform)).exit_code == 0
    result = cli("lab", "start", "ci-templates", "--repo", str(wc))
    assert result.exit_code == 0, result.output
    return wc


def check_callers(cli, wc: Path, github: str, gitlab: str) -> list[dict]:
    (wc / ".github" / "workflows" / "ci.yml").write_text(github)
    (wc / ".gitlab-ci.yml").write_text(gitlab)
    git(wc, "add", "-A")
    git(wc, "commit", "-qm", "Callers")
    git(wc, "push", "-q")
    result = cli("lab", "check", "--repo", str(wc), "--output", "json")
    assert result.exit_code != 0, result.output
    [step] = [s for s in json.loads(result.stdout)["steps"] if s["id"] == "call-the-platform"]
    return step["results"]


CALLER = """\
jobs:
  pipeline:
    uses: ml-platform/ml-platform-pipelines/.github/workflows/ml-pipeline.yml@{ref}
    with:
      tooling-source: {tooling}
"""
GITLAB_CALLER = """\
include:
  - component: $CI_SERVER_FQDN/ml-platform/ml-platform-pipelines/ml-pipeline@{ref}
    inputs:
      tooling-source: git+https://git.example.com/tools/gitops-lab.git@v0.1.0
"""


def test_a_caller_pinned_to_a_branch_fails_with_a_hint_to_pin_a_tag(platform_lab, cli):
    results = check_callers(
        cli, platform_lab, CALLER.format(ref="main", tooling="'${{ vars.T }}'"), GITLAB_CALLER.format(ref="main")
    )
    messages = " ".join(r["message"] for r in results if not r["passed"])
    assert "at branch 'main'" in messages and "pin a released tag (@v1.0.0)" in messages, results


def test_a_commented_out_caller_or_an_unpinned_tooling_source_does_not_pass(platform_lab, cli):
    commented = "# " + CALLER.format(ref="v1.0.0", tooling="x").replace("\n", "\n# ")
    results = check_callers(cli, platform_lab, commented + "\non: push\n", GITLAB_CALLER.format(ref="v1.0.0"))
    assert not results[0]["passed"] and "calls OWNER/ml-platform-pipelines" in results[0]["message"], results
    results = check_callers(
        cli, platform_lab, CALLER.format(ref="v1.0.0", tooling="gitops-lab"), GITLAB_CALLER.format(ref="v1.0.0")
    )
    assert not results[0]["passed"] and "pin a source you control" in results[0]["message"], results

"""The CI-template lab, and the workflows this project ships, checked with the real tools.

- actionlint on every workflow: the CI-template lab's callers (its solutions),
  the platform repository's reusable workflow and this project's own;
- `lab test ci-templates` without a cluster, and the lab's checks of a caller
  pinned to a branch, commented out, or installing an unpinned tooling source.

The pipeline itself (the platform's reusable workflow and GitLab component,
called across repositories at a tag) runs for real under act and
gitlab-ci-local in test_ci_platform.py. The tools come from PATH or from
~/.cache/gitops-lab-ci-tools (installed by scripts/install-ci-tools); without
them these tests skip, saying so.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.paths import REPO
from helpers.ci_tools import tool
from helpers.gitutil import git
from helpers.osvdb import build_osv_db
from helpers.renderer import needs_kustomize

from gitops_lab.gates.vuln_scan import DB_VAR

# Only a bound for a hung tool, no assertion is about time.
TOOL_TIMEOUT = 600


@pytest.fixture(autouse=True)
def offline_advisories(tmp_path, monkeypatch) -> None:
    """The pipeline's security stage (the lab's checks run it) reads the tests' real OSV subset, not api.osv.dev."""
    monkeypatch.setenv(DB_VAR, str(build_osv_db(tmp_path / "osv-db")))


def lab_callers(tmp_path: Path) -> list[Path]:
    """Each GitHub caller the CI-template lab's solutions commit, written to a file of its own."""
    lab = yaml.safe_load((REPO / "labs" / "ci-templates" / "lab.yaml").read_text())
    found = []
    for step in lab["steps"]:
        for action in step.get("solve") or []:
            commit = action.get("commit_file") or {}
            if commit.get("path") == ".github/workflows/ci.yml":
                path = tmp_path / step["id"] / ".github" / "workflows" / "ci.yml"
                path.parent.mkdir(parents=True)
                path.write_text(commit["content"])
                found.append(path)
    return found


def actionlint(*workflows: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("actionlint"), "-no-color", *map(str, workflows)], capture_output=True, text=True, timeout=TOOL_TIMEOUT
    )


def test_actionlint_accepts_every_workflow(tmp_path):
    callers = lab_callers(tmp_path)
    assert len(callers) == 2  # v1.0.0, then v1.1.0
    workflows = [*callers, *sorted((REPO / "platform" / ".github" / "workflows").glob("*.yml"))]
    workflows += sorted((REPO / ".github" / "workflows").glob("*.yml"))
    result = actionlint(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_caller(tmp_path):
    [caller, _] = lab_callers(tmp_path)
    # A job that calls a reusable workflow cannot have steps of its own.
    caller.write_text(
        caller.read_text().replace("    secrets: inherit\n", "    secrets: inherit\n    steps: [{run: x}]\n")
    )
    result = actionlint(caller)
    assert result.returncode != 0 and "steps" in result.stdout, result.stdout + result.stderr


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
    (wc / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
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

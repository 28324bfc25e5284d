"""The pipeline design document check (`gitops-lab design check`, gitops_lab.assessment).

A document that agrees with the repository passes; one that is missing a
section, names a gate or stage that does not exist, gives a wrong threshold or
rollback criteria that contradict `verification` fails, naming each difference.
The agreement is with the repository the document sits in: change gates.yaml
and the same document fails. The lab built on it fails on the template and
passes after its solution, against a real bare remote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_lab.assessment.ci_stages import pipeline_stages
from gitops_lab.assessment.design_doc import DOC_PATH, SECTIONS, check_design
from gitops_lab.assessment.repo_files import CommitFiles, FolderFiles
from gitops_lab.cli import main
from gitops_lab.pipeline.stages import STAGES
from gitops_lab.resources import environments_template
from helpers.designdoc import AGREEING
from helpers.labenv import lab_test_steps, seeded_lab_env
from helpers.gitutil import git


@pytest.fixture
def repo(tmp_path) -> Path:
    """A copy of the seeded repository holding the agreeing document."""
    root = tmp_path / "repo"
    shutil.copytree(environments_template(), root)
    (root / DOC_PATH).write_text(AGREEING, encoding="utf-8")
    return root


OWN_JOB_CALLER = """\
on: push
jobs:
  pipeline:
    uses: ml-platform/ml-platform-pipelines/.github/workflows/ml-pipeline.yml@v1.0.0
    with:
      tooling-source: ${{ vars.GITOPS_LAB_TOOLING }}
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: python -m compileall base
"""
OWN_GITLAB_JOB = """\
include:
  - component: $CI_SERVER_FQDN/ml-platform/ml-platform-pipelines/ml-pipeline@v1.0.0
    inputs:
      tooling-source: $GITOPS_LAB_TOOLING
smoke:
  script: [python -m compileall base]
"""


def _messages(root: Path) -> list[str]:
    return [str(p) for p in check_design(FolderFiles(root)).problems]


def _edit(root: Path, path: str, old: str, new: str) -> None:
    target = root / path
    text = target.read_text(encoding="utf-8")
    assert old in text, f"{path} has no {old!r}"
    target.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_document_that_agrees_passes(repo):
    report = check_design(FolderFiles(repo))
    assert report.problems == []
    assert report.stages == list(STAGES)  # the platform pipeline's, as python -m gitops_lab.pipeline runs them
    assert report.gates == ["data-quality", "model-eval", "policy", "approval"]
    assert report.templates == ["ml-platform-pipelines v1.0.0"]


def test_the_stages_are_the_platform_pipelines_in_the_order_it_runs_them(tmp_path):
    """The seed has no CI file of its own: its pipeline is the platform's, the stages python -m gitops_lab.pipeline runs."""
    found = pipeline_stages(FolderFiles(environments_template()))
    assert list(found.stages) == list(STAGES)
    assert found.templates == ["ml-platform-pipelines v1.0.0"] and found.problems == []


def test_the_seeded_template_fails_on_every_section_it_leaves_unwritten(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(environments_template(), root)
    report = check_design(FolderFiles(root))
    placeholders = {p.section for p in report.problems if "placeholder TODO" in p.message}
    assert placeholders == {s.key for s in SECTIONS}
    # The template names every stage of the platform pipeline for the learner: none is reported missing.
    assert report.stages == list(STAGES)
    assert not [p for p in report.problems if p.section == "stages" and "is not described" in p.message]


def test_a_missing_section_fails_naming_it(repo):
    text = (repo / DOC_PATH).read_text()
    start = text.index("## Security controls")
    end = text.index("## Failure modes")
    (repo / DOC_PATH).write_text(text[:start] + text[end:])
    assert _messages(repo) == ["security: the section '## Security controls' is missing: add it"]


def test_an_empty_section_fails(repo):
    text = (repo / DOC_PATH).read_text()
    start = text.index("## Security controls") + len("## Security controls\n")
    end = text.index("## Failure modes")
    (repo / DOC_PATH).write_text(text[:start] + "\n<!-- later -->\n\n" + text[end:])
    [message] = _messages(repo)
    assert message.startswith("security (line ") and message.endswith("the section is empty: write it")


def test_a_gate_that_does_not_exist_fails(repo):
    _edit(repo, DOC_PATH, "  - name: approval\n", "  - name: fairness\n")
    assert _messages(repo) == [
        "gates: gate 'fairness' does not exist (gates.yaml knows data-quality, model-eval, policy, secret-scan, vuln-scan, approval)",
        "gates: gate 'approval' (gates.yaml requires it for prod) is not described",
    ]


def test_a_wrong_threshold_fails_with_both_values(repo):
    _edit(repo, DOC_PATH, "max_psi: 0.2", "max_psi: 0.3")
    assert _messages(repo) == ["gates: data-quality.max_psi: the document says 0.3, gates.yaml says 0.2"]


def test_a_threshold_gates_yaml_does_not_have_fails(repo):
    _edit(repo, DOC_PATH, "max_psi: 0.2", "max_kl: 0.2")
    [message] = _messages(repo)
    assert message.startswith("gates: gate 'data-quality' has no setting 'max_kl' in gates.yaml (its settings: ")


def test_a_rollback_criterion_that_contradicts_verification_fails(repo):
    _edit(repo, DOC_PATH, "max_error_rate: 0.01", "max_error_rate: 0.05")
    assert _messages(repo) == [
        "promotion-rollback: rollback criterion verification.max_error_rate: the document says 0.05, "
        "gates.yaml says 0.01"
    ]


def test_rollback_criteria_that_leave_a_threshold_out_fail(repo):
    _edit(repo, DOC_PATH, "    max_restarts: 0\n", "")
    assert _messages(repo) == [
        "promotion-rollback: the rollback criteria leave out verification.max_restarts (0 in gates.yaml)"
    ]


def test_a_stage_that_does_not_exist_fails(repo):
    _edit(repo, DOC_PATH, "  - name: training\n", "  - name: train-model\n")
    assert _messages(repo) == [
        "stages: stage 'train-model' is not a stage of the pipeline (ml-platform-pipelines v1.0.0: data-preparation, "
        "data-validation, training, unit-tests, integration-tests, evaluation, security, release)",
        "stages: stage 'training' (ml-platform-pipelines v1.0.0) is not described: add it",
    ]


def test_promotion_gates_must_be_the_ones_gates_yaml_requires(repo):
    _edit(repo, DOC_PATH, "gates: [data-quality, model-eval, policy, approval]", "gates: [data-quality, approval]")
    assert _messages(repo) == [
        'promotion-rollback: promotion to prod: the document lists gates ["data-quality", "approval"], but it also '
        'requires model-eval, policy (required.prod: ["data-quality", "model-eval", "policy", "approval"])'
    ]


def test_every_difference_is_reported_at_once(repo):
    _edit(repo, DOC_PATH, "max_psi: 0.2", "max_psi: 0.3")
    _edit(repo, DOC_PATH, "max_error_rate: 0.01", "max_error_rate: 0.05")
    _edit(repo, DOC_PATH, "  - name: training\n", "  - name: train-model\n")
    sections = [p.section for p in check_design(FolderFiles(repo)).problems]
    assert sections == ["stages", "stages", "gates", "promotion-rollback"]


def test_the_document_is_compared_with_its_own_repository(repo):
    """Change the pipeline, not the document: the same document now disagrees."""
    _edit(repo, "gates.yaml", "max_psi: 0.2 ", "max_psi: 0.15")
    _edit(repo, "gates.yaml", "max_latency_p95_seconds: 0.25", "max_latency_p95_seconds: 0.5")
    # A job of the learner's own, beside the call of the platform pipeline, is a stage of their pipeline too.
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(OWN_JOB_CALLER, encoding="utf-8")
    (repo / ".gitlab-ci.yml").write_text(OWN_GITLAB_JOB, encoding="utf-8")
    assert _messages(repo) == [
        "stages: stage 'lint' (.github/workflows/ci.yml) is not described: add it",
        "stages: stage 'smoke' (.gitlab-ci.yml) is not described: add it",
        "gates: data-quality.max_psi: the document says 0.2, gates.yaml says 0.15",
        "promotion-rollback: rollback criterion verification.max_latency_p95_seconds: the document says 0.25, "
        "gates.yaml says 0.5",
    ]


def test_a_yaml_block_that_does_not_parse_names_its_line(repo):
    _edit(repo, DOC_PATH, "  - name: unit-tests\n", "  - name: [unit-tests\n")
    [message, *_] = _messages(repo)
    assert message.startswith("stages (line ") and "the yaml block is not valid YAML" in message


def test_a_commit_is_read_as_committed_not_as_the_working_copy(repo):
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "seed")
    _edit(repo, DOC_PATH, "max_psi: 0.2", "max_psi: 0.3")  # not committed
    assert check_design(CommitFiles(git_of(repo), "main")).passed
    assert not check_design(FolderFiles(repo)).passed


def git_of(root: Path):
    from gitops_lab.adapters.repo.git import Git

    return Git(root)


# -- the command ---------------------------------------------------------------
def test_design_check_exits_0_when_it_agrees_and_4_naming_each_difference(repo):
    runner = CliRunner()
    ok = runner.invoke(main, ["design", "check", "--repo", str(repo)], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith(
        "docs/pipeline-design.md agrees with the repository: 8 stages (ml-platform-pipelines v1.0.0), 4 gates"
    )

    _edit(repo, DOC_PATH, "max_psi: 0.2", "max_psi: 0.3")
    _edit(repo, DOC_PATH, "  - name: training\n", "  - name: train-model\n")
    bad = runner.invoke(main, ["design", "check", "--repo", str(repo), "--output", "json"], catch_exceptions=False)
    assert bad.exit_code == 4
    data = json.loads(bad.stdout)
    assert data["passed"] is False
    assert [(p["section"], p["message"][:30]) for p in data["problems"]] == [
        ("stages", "stage 'train-model' is not a s"),
        ("stages", "stage 'training' (ml-platform-"),
        ("gates", "data-quality.max_psi: the docu"),
    ]
    [line] = bad.stderr.splitlines()
    assert line.startswith("error: docs/pipeline-design.md has 3 problems (listed above), the first: stages: ")


def test_design_check_without_a_document_exits_2_naming_the_fix(repo):
    (repo / DOC_PATH).unlink()
    result = CliRunner().invoke(main, ["design", "check", "--repo", str(repo)], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: there is no design document docs/pipeline-design.md in {repo}; restore the template with "
        "`git checkout gitops-lab/seed -- docs/pipeline-design.md`, or pass --path"
    )


def test_design_check_of_a_binary_document_exits_2(repo):
    (repo / DOC_PATH).write_bytes(b"\x00\x01binary")
    result = CliRunner().invoke(main, ["design", "check", "--repo", str(repo)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "is binary, not text" in result.stderr


# -- the lab ----------------------------------------------------------------------
@pytest.fixture
def lab_env(tmp_path, monkeypatch):
    """A seeded working copy with a bare remote, the shipped labs, and a CLI runner."""
    return seeded_lab_env(tmp_path, monkeypatch, None)


def test_the_lab_fails_on_the_template_and_passes_on_a_pushed_document_that_agrees(lab_env):
    cli, wc, remote = lab_env
    assert cli("lab", "start", "pipeline-design", "--repo", str(wc)).exit_code == 0
    failed = cli("lab", "check", "--repo", str(wc))
    assert failed.exit_code != 0
    assert "docs/pipeline-design.md as pushed has" in failed.output

    # Written but not pushed: the check reads what was pushed.
    (wc / DOC_PATH).write_text(AGREEING, encoding="utf-8")
    git(wc, "commit", "--quiet", "-am", "Write the design document")
    assert cli("lab", "check", "--repo", str(wc)).exit_code != 0
    git(wc, "push", "--quiet")
    passed = cli("lab", "check", "--repo", str(wc))
    assert passed.exit_code == 0, passed.output

    # Step 2's setup changed gates.yaml on the remote: the same document now disagrees, naming the criterion.
    stale = cli("lab", "check", "--repo", str(wc))
    assert stale.exit_code != 0
    assert "verification.accuracy_tolerance: the document says 0.05, gates.yaml says 0.03" in stale.output


def test_lab_test_runs_the_design_lab_end_to_end_on_a_bare_remote(lab_env):
    cli, wc, remote = lab_env
    # the review step needs a forge, which a bare remote is not: skipped, saying why, not passed
    assert lab_test_steps(cli, wc, "pipeline-design") == [
        ("write-the-design", "passed"),
        ("keep-it-true", "passed"),
        ("open-for-review", "skipped"),
        ("reset", "passed"),
    ]


def test_without_a_forge_lab_test_skips_the_review_step_and_lab_check_fails_it_saying_how_to_get_one(lab_env):
    cli, wc, remote = lab_env
    result = cli("lab", "test", "pipeline-design", "--repo", str(wc), "--output", "json")
    assert result.exit_code == 0, result.output
    [tested] = json.loads(result.stdout)["labs"]
    [review] = [case for case in tested["steps"] if case["step"] == "open-for-review"]
    assert review["status"] == "skipped"
    assert review["message"].startswith("needs a forge (Gitea) for pull requests: ")
    assert "`gitops-lab up --git-server gitea`" in review["message"]

    # a learner can get a forge: `lab check` does not pass the step, its check says how
    assert cli("lab", "start", "pipeline-design", "--repo", str(wc)).exit_code == 0
    assert cli("lab", "solve", "keep-it-true", "--repo", str(wc)).exit_code == 0
    checked = cli("lab", "check", "--repo", str(wc))
    assert checked.exit_code != 0
    assert "this lab has no forge (Gitea) for pull requests, so nobody can review the design" in checked.output
    assert "`gitops-lab repo init --forge-url URL --forge-credentials FILE`" in checked.output

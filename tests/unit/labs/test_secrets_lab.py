"""The secrets lab with the real gitleaks: a planted AWS key fails the pipeline, and the check tells the fixes apart.

Each case runs the lab's own setup (the leaked key, made at run time), then does
what a learner would with plain git, then runs `gitops-lab lab check`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.gitutil import git
from helpers.labenv import start_and_solve

from gitops_lab.gates import run_gates
from gitops_lab.gates.secret_scan import find_scanner

needs_gitleaks = pytest.mark.skipif(
    find_scanner() is None, reason="gitleaks is not installed (run scripts/install-ci-tools, or put it on PATH)"
)

DEPLOY = "ci/deploy.env"
REASON = "revoked on 2025-01-10; kept as the deploy script's test fixture"


def start_leak(wc: Path, cli) -> None:
    """Start the lab, solve step 1 (secret-scan required), so step 2's setup plants the key (not pushed)."""
    start_and_solve(cli, wc, "secrets", "require-the-scan")
    assert git(wc, "log", "-1", "--format=%an %s") == "Hasty Helper Add the S3 settings for uploading model artifacts"
    assert git(wc, "rev-list", "--count", "origin/main..HEAD") == "1"


class Checked:
    """`lab check`'s exit code and its output with the terminal's line wrapping undone."""

    def __init__(self, result):
        self.exit_code = result.exit_code
        self.output = " ".join(result.output.split())


def check(wc: Path, cli) -> Checked:
    return Checked(cli("lab", "check", "--repo", str(wc)))


def key_lines(wc: Path) -> list[str]:
    return [line for line in (wc / DEPLOY).read_text().splitlines() if line.startswith("AWS_") and "KEY" in line]


# `lab test secrets` (all three steps, step 3 needs sops too): tests/unit/labs/test_secrets_lab_api_key.py


@needs_gitleaks
def test_the_gate_and_the_security_stage_name_file_line_and_rule(lab, cli):
    wc, _ = lab
    start_leak(wc, cli)
    key_id = key_lines(wc)[0].split("=", 1)[1]
    assert key_id.startswith("AKIA") and len(key_id) == 20
    [result] = run_gates(wc, "dev", "staging", only=["secret-scan"])
    assert not result.passed
    sha = git(wc, "rev-parse", "--short=7", "HEAD")
    assert f"fail: {DEPLOY}:4 aws-access-token (commit {sha})" in result.details
    assert f"fail: {DEPLOY}:5 generic-api-key (commit {sha})" in result.details
    assert key_id not in json.dumps(result.to_dict())
    # The pipeline's security stage, as the step's instructions have the learner run it before pushing.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    stage = subprocess.run(
        [sys.executable, "-m", "gitops_lab.pipeline", "security"],
        cwd=wc,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert stage.returncode != 0 and "STAGE security: FAIL" in stage.stdout, stage.stdout + stage.stderr
    assert f"{DEPLOY}:4 aws-access-token (commit {sha})" in stage.stdout + stage.stderr
    assert key_id not in stage.stdout + stage.stderr


@needs_gitleaks
def test_check_fails_before_the_fix_naming_the_unpushed_commit(lab, cli):
    wc, _ = lab
    start_leak(wc, cli)
    result = check(wc, cli)
    assert result.exit_code != 0
    assert f"{DEPLOY} is not on origin/main yet (yours, not pushed:" in result.output


@needs_gitleaks
def test_pushing_the_key_as_it_is_fails_naming_the_commit(lab, cli):
    wc, _ = lab
    start_leak(wc, cli)
    git(wc, "push", "--quiet", "origin", "main")
    result = check(wc, cli)
    assert result.exit_code != 0
    assert f"on origin/main holds the AWS key in {DEPLOY}" in result.output
    assert "aws-access-token" in result.output


@needs_gitleaks
def test_a_bare_deletion_in_a_new_commit_fails_because_history_keeps_the_key(lab, cli):
    wc, _ = lab
    start_leak(wc, cli)
    leaked = git(wc, "rev-parse", "--short=7", "HEAD")
    kept = [line for line in (wc / DEPLOY).read_text().splitlines() if line not in key_lines(wc)]
    (wc / DEPLOY).write_text("\n".join(kept) + "\n")
    git(wc, "commit", "--quiet", "-am", "Remove the key")
    git(wc, "push", "--quiet", "origin", "main")
    result = check(wc, cli)
    assert result.exit_code != 0
    assert f"{DEPLOY} no longer holds the key, but commit {leaked} on origin/main still does" in result.output
    assert "a deletion in a new commit leaves the key in history" in result.output


@needs_gitleaks
def test_rewriting_the_unpushed_commit_passes_as_a_rewrite(lab, cli):
    wc, _ = lab
    start_leak(wc, cli)
    kept = [line for line in (wc / DEPLOY).read_text().splitlines() if line not in key_lines(wc)]
    (wc / DEPLOY).write_text("\n".join(kept) + "\n")
    git(wc, "commit", "--quiet", "--amend", "--no-edit", "-a")
    git(wc, "push", "--quiet", "origin", "main")
    result = check(wc, cli)
    assert result.exit_code == 0, result.output
    assert "fixed by rewriting history: no commit on origin/main holds the key" in result.output


def write_allowlist(wc: Path, description: str, path_pattern: str, extend: bool = True) -> None:
    head = "[extend]\nuseDefault = true\n\n" if extend else ""
    (wc / ".gitleaks.toml").write_text(
        f"{head}[[allowlists]]\ndescription = {json.dumps(description)}\npaths = ['''{path_pattern}''']\n"
    )


def push_allowlist(wc: Path) -> None:
    git(wc, "add", ".gitleaks.toml")
    git(wc, "commit", "--quiet", "-m", "Allowlist the revoked fixture key")
    git(wc, "push", "--quiet", "origin", "main")


@needs_gitleaks
def test_an_allowlist_naming_the_file_with_a_reason_passes_as_an_allowlist(lab, cli):
    wc, _ = lab
    start_leak(wc, cli)
    write_allowlist(wc, REASON, r"^ci/deploy\.env$")
    push_allowlist(wc)
    result = check(wc, cli)
    assert result.exit_code == 0, result.output
    assert f"fixed by an allowlist: .gitleaks.toml [[allowlists]] #1 names {DEPLOY} with the reason" in result.output
    assert REASON in result.output


@needs_gitleaks
def test_a_fingerprint_in_gitleaksignore_with_its_reason_passes(lab, cli):
    wc, _ = lab
    start_leak(wc, cli)
    sha = git(wc, "rev-parse", "HEAD")
    findings = [("aws-access-token", 4), ("generic-api-key", 5)]
    # Each finding twice: in the commit (commit:file:rule:line) and in the tree (file:rule:line).
    (wc / ".gitleaksignore").write_text(
        "".join(
            f"# {REASON}\n{prefix}{DEPLOY}:{rule}:{line}\n" for prefix in (f"{sha}:", "") for rule, line in findings
        )
    )
    git(wc, "add", ".gitleaksignore")
    git(wc, "commit", "--quiet", "-m", "Ignore the revoked fixture key")
    git(wc, "push", "--quiet", "origin", "main")
    result = check(wc, cli)
    assert result.exit_code == 0, result.output
    assert f"fixed by an allowlist: .gitleaksignore:2 names {DEPLOY}" in result.output


@needs_gitleaks
def test_an_allowlist_with_a_short_reason_fails(lab, cli):
    wc, _ = lab
    start_leak(wc, cli)
    write_allowlist(wc, "a test fixture", r"^ci/deploy\.env$")
    push_allowlist(wc)
    result = check(wc, cli)
    assert result.exit_code != 0
    assert "its reason has 14 characters: write at least 30" in result.output


@pytest.mark.parametrize(
    ("pattern", "extend"),
    [(r"\.env$", True), (r"^ci/deploy\.env$", False)],
    ids=["hides-every-env-file", "drops-gitleaks-rules"],
)
@needs_gitleaks
def test_an_allowlist_that_hides_more_than_the_file_fails(lab, cli, pattern, extend):
    wc, _ = lab
    start_leak(wc, cli)
    write_allowlist(wc, REASON, pattern, extend=extend)
    push_allowlist(wc)
    result = check(wc, cli)
    assert result.exit_code != 0
    assert "would also hide an AWS key in ci/registry.env" in result.output


@needs_gitleaks
def test_without_gitleaks_the_check_fails_with_how_to_install(lab, cli, monkeypatch, tmp_path):
    wc, _ = lab
    start_leak(wc, cli)
    git(wc, "push", "--quiet", "origin", "main")
    monkeypatch.setenv("GITOPS_LAB_GITLEAKS", str(tmp_path / "no-gitleaks"))
    result = check(wc, cli)
    assert result.exit_code != 0
    assert "gitleaks is not installed: install gitleaks 8.30.1 with scripts/install-ci-tools" in result.output


def test_this_project_holds_no_key_shaped_literal():
    """The lab builds its key at run time; its files never hold one, so this repository's own scans stay clean."""
    import re

    lab_dir = REPO / "labs" / "secrets"
    for path in lab_dir.iterdir():
        assert not re.search(r"AKIA[A-Z2-7]{16}", path.read_text()), path

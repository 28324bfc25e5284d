"""The secret-scan gate: the real gitleaks (pinned, built by scripts/install-ci-tools) on a real repository.

Credentials are made up at test time (random, in the providers' formats), so
this project's own tree never holds one. A planted credential must fail the gate
naming file, line and rule; an allowlist entry with a reason, or removing the
commit from history, must make it pass again; an exception without a reason fails.
"""

from __future__ import annotations

import base64
import random
import string

import pytest
from helpers.gitutil import git

from gitops_lab.gates import run_gates
from gitops_lab.gates.secret_scan import find_scanner

needs_gitleaks = pytest.mark.skipif(
    find_scanner() is None, reason="gitleaks is not installed (run scripts/install-ci-tools, or put it on PATH)"
)


def aws_key_id(seed: int = 1) -> str:
    rng = random.Random(seed)
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def private_key_block(seed: int = 2) -> str:
    body = base64.b64encode(random.Random(seed).randbytes(600)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *lines, "-----END RSA PRIVATE KEY-----", ""])


def scan(wc):
    [result] = run_gates(wc, "dev", "staging", only=["secret-scan"])
    return result


def plant(wc, path: str = "ci/deploy.env") -> str:
    key = aws_key_id()
    (wc / path).write_text(f"# deploy credentials\nAWS_ACCESS_KEY_ID={key}\n")
    git(wc, "add", path)
    git(wc, "commit", "--quiet", "-m", "Add the deploy credentials")
    return key


@needs_gitleaks
def test_the_seeded_repository_is_clean(lab):
    wc, _ = lab
    result = scan(wc)
    assert result.passed, result.details
    assert result.summary == "no secrets in any commit or the tree (gitleaks)"


@needs_gitleaks
def test_a_committed_key_fails_naming_file_line_rule_and_commit_and_is_not_shown(lab):
    wc, _ = lab
    key = plant(wc)
    commit = git(wc, "rev-parse", "--short=7", "HEAD")
    result = scan(wc)
    assert not result.passed
    assert f"fail: ci/deploy.env:2 aws-access-token (commit {commit})" in result.details
    assert "fail: ci/deploy.env:2 aws-access-token (working tree)" in result.details
    assert result.summary.startswith("2 secrets found: ci/deploy.env:2 aws-access-token")
    assert "rotate the credential" in result.fix
    assert key not in repr(result.to_dict())  # redacted


@needs_gitleaks
def test_removing_the_commit_from_history_passes(lab):
    wc, _ = lab
    plant(wc)
    assert not scan(wc).passed
    # Not pushed yet: the learner drops the commit (and rotates the key).
    git(wc, "reset", "--quiet", "--hard", "HEAD~1")
    assert scan(wc).passed
    # Deleting the file in a new commit is not enough: the key stays in history.
    plant(wc)
    git(wc, "rm", "--quiet", "ci/deploy.env")
    git(wc, "commit", "--quiet", "-m", "Remove the credentials")
    result = scan(wc)
    assert not result.passed
    assert [d for d in result.details if d.startswith("fail: ")] == [
        f"fail: ci/deploy.env:2 aws-access-token (commit {git(wc, 'rev-parse', '--short=7', 'HEAD~1')})"
    ]


ALLOWLIST = """[extend]
useDefault = true

[[allowlists]]
{description}paths = ['''^ci/deploy\\.env$''']
"""


@needs_gitleaks
def test_an_allowlist_entry_passes_only_with_a_written_reason(lab):
    wc, _ = lab
    plant(wc)
    (wc / ".gitleaks.toml").write_text(ALLOWLIST.format(description=""))
    result = scan(wc)
    assert not result.passed
    assert result.summary == (".gitleaks.toml [[allowlists]] #1 has no description: write down why it is not a secret")
    (wc / ".gitleaks.toml").write_text(
        ALLOWLIST.format(description='description = "revoked in 2024; kept as the scanner lab\'s fixture"\n')
    )
    result = scan(wc)
    assert result.passed, result.details
    assert (
        "pass: .gitleaks.toml [[allowlists]] #1: revoked in 2024; kept as the scanner lab's fixture" in result.details
    )


@needs_gitleaks
def test_a_fingerprint_ignore_needs_a_reason_line(lab):
    wc, _ = lab
    plant(wc)
    commit = git(wc, "rev-parse", "HEAD")
    fingerprints = [f"{commit}:ci/deploy.env:aws-access-token:2", "ci/deploy.env:aws-access-token:2"]
    (wc / ".gitleaksignore").write_text("\n".join(fingerprints) + "\n")
    result = scan(wc)
    assert not result.passed
    assert result.summary.startswith(f".gitleaksignore:1 ignores {commit}:ci/deploy.env")
    (wc / ".gitleaksignore").write_text(
        "\n".join(f"# a revoked key, kept as a test fixture\n{f}" for f in fingerprints) + "\n"
    )
    assert scan(wc).passed, scan(wc).details


@needs_gitleaks
def test_an_uncommitted_private_key_is_found_in_the_tree(lab):
    wc, _ = lab
    (wc / "deploy_key").write_text(private_key_block())
    result = scan(wc)
    assert not result.passed
    assert result.details[-1] == "fail: deploy_key:1 private-key (working tree)", result.details


def test_without_gitleaks_the_gate_fails_with_the_install_fix(lab, cli, monkeypatch, tmp_path):
    wc, _ = lab
    monkeypatch.setenv("GITOPS_LAB_GITLEAKS", str(tmp_path / "no-gitleaks"))
    result = cli("gate", "run", "--to", "staging", "--gate", "secret-scan", "--repo", str(wc))
    assert result.exit_code == 4
    [line] = result.stderr.strip().splitlines()
    assert "fails 1 gate: secret-scan" in line
    assert "secret-scan: install gitleaks 8.30.1 with scripts/install-ci-tools" in line

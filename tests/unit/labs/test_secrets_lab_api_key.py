"""Lab 12 `secrets`, step 3: staging's API key kept in Git only encrypted, with the real sops and age.

Each case starts the lab, solves steps 1 and 2, then does what a learner would
with plain git, the real `sops` and `gitops-lab secrets init` (Git-side: these
tests have no cluster), then runs `gitops-lab lab check`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers.gitutil import git
from helpers.labenv import lab_test_steps, start_and_solve
from helpers.renderer import needs_kustomize

from gitops_lab.gates import run_gates
from gitops_lab.gates.ci_tools import find_tool
from gitops_lab.gates.secret_scan import find_scanner

SOPS = find_tool("sops", "GITOPS_LAB_SOPS") or ""
KEYGEN = find_tool("age-keygen", "GITOPS_LAB_AGE_KEYGEN") or ""
pytestmark = [
    pytest.mark.skipif(
        not SOPS or not KEYGEN, reason="sops and age-keygen are not installed: scripts/install-ci-tools"
    ),
    pytest.mark.skipif(find_scanner() is None, reason="gitleaks is not installed (steps 1 and 2 need it)"),
    needs_kustomize,
]

FILE = "overlays/staging/api-key.yaml"
OVERLAY = "overlays/staging/kustomization.yaml"
MANIFEST = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: model-api-key\ntype: Opaque\nstringData:\n  API_KEY: {}\n"


def at_step_3(wc: Path, cli) -> None:
    start_and_solve(cli, wc, "secrets", "leaked-key")


def check(wc: Path, cli) -> tuple[int, str]:
    result = cli("lab", "check", "--repo", str(wc))
    return result.exit_code, " ".join(result.output.split())  # the terminal's line wrapping undone


def write_secret(wc: Path, value: str) -> None:
    (wc / FILE).write_text(MANIFEST.format(value))
    overlay = (wc / OVERLAY).read_text()
    if "api-key.yaml" not in overlay:
        (wc / OVERLAY).write_text(overlay.replace("  - ../../base\n", "  - ../../base\n  - api-key.yaml\n"))


def sops(wc: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    subprocess.run([SOPS, *args], cwd=wc, env=env, check=True, capture_output=True, timeout=60)


def secrets_init(wc: Path, cli) -> str:
    """`gitops-lab secrets init` with the learner's change put aside, as the step says; the recipient."""
    dirty = bool(git(wc, "status", "--porcelain"))
    if dirty:
        git(wc, "stash", "--quiet", "--include-untracked")
    result = cli("secrets", "init", "--repo", str(wc))
    assert result.exit_code == 0, result.output
    assert ".sops.yaml: committed and pushed as" in result.output
    assert "no cluster: none set up" in result.output
    if dirty:
        git(wc, "stash", "pop", "--quiet")
    return result.output.split("(recipient ", 1)[1].split(")", 1)[0]


def commit_and_push(wc: Path, message: str) -> None:
    git(wc, "add", FILE, OVERLAY)
    git(wc, "commit", "--quiet", "-m", message)
    git(wc, "push", "--quiet", "origin", "main")


def test_the_lab_passes_lab_test_with_the_encryption_step(lab, cli):
    wc, _ = lab
    assert lab_test_steps(cli, wc, "secrets") == [
        ("require-the-scan", "passed"),
        ("leaked-key", "passed"),
        ("encrypted-api-key", "passed"),
        ("reset", "passed"),
    ]


def test_plaintext_is_refused_by_the_gate_and_the_check_naming_secrets_init_and_sops(lab, cli):
    wc, _ = lab
    at_step_3(wc, cli)
    code, output = check(wc, cli)
    assert code != 0 and "overlays/staging on origin/main renders no Secret/model-api-key" in output
    write_secret(wc, "sk-plain-0123456789abcdef")
    [policy] = run_gates(wc, "dev", "staging", "v2", only=["policy"])
    assert not policy.passed
    assert "fail: Secret/model-api-key: Secret with plaintext data in Git (API_KEY)" in policy.details[0]
    commit_and_push(wc, "Staging's API key")
    code, output = check(wc, cli)
    assert code != 0
    assert "Secret/model-api-key: Secret with plaintext data in Git (API_KEY); encrypt it with the lab's key" in output
    assert "gitops-lab secrets init" in output and "sops encrypt --in-place" in output  # the step's hint


def test_a_secret_encrypted_for_another_key_fails(lab, cli, tmp_path):
    wc, _ = lab
    at_step_3(wc, cli)
    write_secret(wc, "sk-model-for-a-stranger-42")
    lab_key = secrets_init(wc, cli)
    stranger = tmp_path / "stranger.agekey"
    subprocess.run([KEYGEN, "-o", str(stranger)], check=True, capture_output=True)
    other = subprocess.run([KEYGEN, "-y", str(stranger)], check=True, capture_output=True, text=True).stdout.strip()
    sops(wc, "encrypt", "--age", other, "--encrypted-regex", "^(data|stringData)$", "--in-place", FILE)
    commit_and_push(wc, "Staging's API key, encrypted")
    code, output = check(wc, cli)
    assert code != 0
    assert f"Secret/model-api-key: encrypted for {other[:12]}…{other[-6:]}, not for the lab's key" in output
    assert f"{lab_key[:12]}…{lab_key[-6:]}" in output


def test_encrypting_for_the_labs_key_passes_and_git_never_holds_the_value(lab, cli):
    wc, remote = lab
    at_step_3(wc, cli)
    value = "sk-model-kept-secret-7f3a9c"
    write_secret(wc, value)
    secrets_init(wc, cli)
    sops(wc, "encrypt", "--in-place", FILE)
    git(wc, "add", FILE, OVERLAY)
    git(wc, "commit", "--quiet", "-m", "Staging's API key, encrypted")
    code, output = check(wc, cli)
    assert code != 0 and "renders no Secret/model-api-key (yours, not pushed:" in output
    git(wc, "push", "--quiet", "origin", "main")
    code, output = check(wc, cli)
    assert code == 0, output
    assert "is SOPS-encrypted for the lab's key, and no pushed commit holds it in plaintext" in output
    history = subprocess.run(
        ["git", "-C", str(remote), "log", "-p", "--all"], check=True, capture_output=True, text=True
    ).stdout
    assert value not in history


def test_a_pushed_plaintext_key_must_be_rotated_not_only_encrypted(lab, cli):
    wc, _ = lab
    at_step_3(wc, cli)
    leaked = "sk-model-leaked-5d1e0b"
    write_secret(wc, leaked)
    commit_and_push(wc, "Staging's API key")
    leak = git(wc, "rev-parse", "--short=7", "HEAD")
    secrets_init(wc, cli)
    sops(wc, "encrypt", "--in-place", FILE)
    commit_and_push(wc, "Encrypt staging's API key")
    code, output = check(wc, cli)
    assert code != 0
    assert f"commit {leak} on origin/main holds Secret/model-api-key in plaintext, and the encrypted Secret" in output
    write_secret(wc, "sk-model-rotated-9b2c47")
    sops(wc, "encrypt", "--in-place", FILE)
    commit_and_push(wc, "Rotate staging's API key")
    code, output = check(wc, cli)
    assert code == 0, output
    assert f"with a new value: the one commit {leak} leaked in plaintext was rotated" in output

"""Secrets kept encrypted in Git: the policy gate's plaintext-secrets check on Secrets that the real sops
encrypted with real age keys (scripts/install-ci-tools builds both, pinned), in the seeded overlays."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.renderer import needs_kustomize

from gitops_lab.gates import run_gates
from gitops_lab.gates.ci_tools import find_tool
from gitops_lab.gates.sops_secrets import SOPS_CONFIG, lab_recipients, secret_problems
from gitops_lab.resources import environments_template
from gitops_lab.workflows.secrets import sops_config_text

SOPS = find_tool("sops", "GITOPS_LAB_SOPS") or ""  # "": not installed, the tests skip
KEYGEN = find_tool("age-keygen", "GITOPS_LAB_AGE_KEYGEN") or ""
needs_sops = pytest.mark.skipif(
    not SOPS or not KEYGEN, reason="sops and age-keygen are not installed: run scripts/install-ci-tools"
)
pytestmark = needs_sops

API_KEY = "sk-model-server-0d6f3e2a9b"


def make_key(folder: Path, name: str) -> tuple[Path, str]:
    """(an age identity file made by the real age-keygen, its public recipient)."""
    path = folder / f"{name}.agekey"
    subprocess.run([KEYGEN, "-o", str(path)], check=True, capture_output=True)
    recipient = subprocess.run([KEYGEN, "-y", str(path)], check=True, capture_output=True, text=True).stdout.strip()
    return path, recipient


def secret_manifest(namespace: str = "ml-staging") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "model-api-key", "namespace": namespace},
        "type": "Opaque",
        "stringData": {"API_KEY": API_KEY},
    }


def encrypt(repo: Path, rel: str) -> None:
    """`sops encrypt --in-place` in the repository, as a learner runs it: .sops.yaml picks the recipient."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    subprocess.run([SOPS, "encrypt", "--in-place", rel], cwd=repo, env=env, check=True, capture_output=True)


def decrypt(repo: Path, rel: str, key: Path) -> dict:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}, "SOPS_AGE_KEY_FILE": str(key)}
    out = subprocess.run([SOPS, "decrypt", rel], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return yaml.safe_load(out.stdout)


@pytest.fixture
def lab(tmp_path):
    """The seeded overlays, the lab's key in .sops.yaml, and a Secret in overlays/staging (not yet encrypted)."""
    root = tmp_path / "repo"
    shutil.copytree(environments_template(), root)
    key, recipient = make_key(tmp_path, "lab")
    (root / SOPS_CONFIG).write_text(sops_config_text(recipient))
    (root / "overlays/staging/api-key.yaml").write_text(yaml.safe_dump(secret_manifest()))
    overlay = root / "overlays/staging/kustomization.yaml"
    text = overlay.read_text()
    data = yaml.safe_load(text)
    data["resources"] = [*data.get("resources", []), "api-key.yaml"]
    overlay.write_text(yaml.safe_dump(data, sort_keys=False))
    return root, key, recipient


def policy(root: Path):
    [result] = run_gates(root, "dev", "staging", "v2", only=["policy"])
    return result


@needs_kustomize
def test_a_secret_encrypted_for_the_labs_key_passes_and_only_that_key_reads_it(lab, tmp_path):
    root, key, recipient = lab
    encrypt(root, "overlays/staging/api-key.yaml")
    committed = (root / "overlays/staging/api-key.yaml").read_text()
    assert API_KEY not in committed
    stored = yaml.safe_load(committed)
    assert [entry["recipient"] for entry in stored["sops"]["age"]] == [recipient]
    assert stored["metadata"]["name"] == "model-api-key"  # encrypted_regex keeps what the engine reads
    result = policy(root)
    assert result.passed, result.details
    assert result.summary == "7 objects, no violations"  # the rendered Secret is checked, and passes
    assert decrypt(root, "overlays/staging/api-key.yaml", key)["stringData"] == {"API_KEY": API_KEY}
    other, _ = make_key(tmp_path, "other")
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(other)}
    refused = subprocess.run(
        [SOPS, "decrypt", "overlays/staging/api-key.yaml"], cwd=root, env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0 and API_KEY not in refused.stdout


@needs_kustomize
def test_a_plaintext_secret_is_refused_with_how_to_encrypt_it(lab):
    root, _, _ = lab
    result = policy(root)
    assert not result.passed
    assert result.details == [
        "fail: Secret/model-api-key: Secret with plaintext data in Git (API_KEY); encrypt it with the lab's key: "
        "`sops encrypt --in-place <the file of Secret/model-api-key>` in the lab repository (its .sops.yaml names "
        "the recipient), then commit the encrypted file"
    ]


@needs_kustomize
def test_a_secret_encrypted_for_another_key_is_refused_naming_both_keys(lab, tmp_path):
    root, _, recipient = lab
    _, stranger = make_key(tmp_path, "stranger")
    (root / SOPS_CONFIG).write_text(sops_config_text(stranger))
    encrypt(root, "overlays/staging/api-key.yaml")
    (root / SOPS_CONFIG).write_text(sops_config_text(recipient))
    result = policy(root)
    assert not result.passed
    [line] = result.details
    assert line.startswith(f"fail: Secret/model-api-key: encrypted for {stranger[:12]}…{stranger[-6:]}, not for")
    assert f"({recipient[:12]}…{recipient[-6:]} in .sops.yaml), so the cluster cannot decrypt it" in line


def test_a_value_left_out_of_the_encryption_is_refused(lab):
    root, _, recipient = lab
    # A rule that encrypts only `data`: stringData's API key stays readable beside the sops block.
    (root / SOPS_CONFIG).write_text(sops_config_text(recipient).replace("^(data|stringData)$", "^data$"))
    manifest = secret_manifest()
    manifest["data"] = {"CA": "Y2VydGlmaWNhdGU="}
    (root / "overlays/staging/api-key.yaml").write_text(yaml.safe_dump(manifest))
    encrypt(root, "overlays/staging/api-key.yaml")
    stored = yaml.safe_load((root / "overlays/staging/api-key.yaml").read_text())
    assert stored["stringData"] == {"API_KEY": API_KEY} and "sops" in stored
    [problem] = secret_problems(stored, *lab_recipients(root))
    assert problem.startswith("Secret/model-api-key: SOPS-encrypted, but stringData.API_KEY is plaintext")


def test_a_hand_edited_or_keyless_file_is_refused(lab):
    root, _, _ = lab
    encrypt(root, "overlays/staging/api-key.yaml")
    stored = yaml.safe_load((root / "overlays/staging/api-key.yaml").read_text())
    recipients = lab_recipients(root)
    assert secret_problems(stored, *recipients) == []
    no_mac = {**stored, "sops": {k: v for k, v in stored["sops"].items() if k != "mac"}}
    assert "its sops block has no MAC" in secret_problems(no_mac, *recipients)[0]
    (root / SOPS_CONFIG).unlink()
    [problem] = secret_problems(stored, *lab_recipients(root))
    assert problem == (
        "Secret/model-api-key: the repository has no .sops.yaml, so no Secret can be encrypted for the lab: run "
        "`gitops-lab secrets init` (it writes the lab's age recipient to .sops.yaml and pushes it)"
    )


def test_an_empty_secret_and_a_damaged_sops_config(tmp_path):
    assert secret_problems({"kind": "Secret", "metadata": {"name": "empty"}}, [], None) == []
    (tmp_path / SOPS_CONFIG).write_text("creation_rules: [unclosed\n")
    recipients, problem = lab_recipients(tmp_path)
    assert recipients == [] and problem is not None and problem.startswith(".sops.yaml cannot be read (")
    (tmp_path / SOPS_CONFIG).write_text("creation_rules:\n  - path_regex: .*\n")
    assert lab_recipients(tmp_path) == (
        [],
        ".sops.yaml names no age recipient in creation_rules: run "
        "`gitops-lab secrets init` (it writes the lab's age recipient to .sops.yaml and pushes it)",
    )


# --------------------------------------------------------------------------- #
# `secrets init`'s Git-side parts: the key kept in the state folder, .sops.yaml published once.
def test_the_labs_key_is_made_once_private_and_reused(tmp_path, monkeypatch):
    from gitops_lab.deadline import Deadline
    from gitops_lab.workflows.secrets import key_path, load_or_create_key

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    identity, recipient, created = load_or_create_key("gitops-lab", Deadline(30))
    path = key_path("gitops-lab")
    assert created and path.stat().st_mode & 0o777 == 0o600
    assert identity == path.read_text() and "AGE-SECRET-KEY-1" in identity
    assert subprocess.run([KEYGEN, "-y", str(path)], capture_output=True, text=True).stdout.strip() == recipient
    assert load_or_create_key("gitops-lab", Deadline(30)) == (identity, recipient, False)


def test_a_damaged_key_file_or_no_age_keygen_is_one_line_and_keeps_the_file(tmp_path, monkeypatch):
    from gitops_lab.deadline import Deadline
    from gitops_lab.errors import PreflightError, UsageError
    from gitops_lab.workflows.secrets import key_path, load_or_create_key

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GITOPS_LAB_AGE_KEYGEN", str(tmp_path / "no-such-age-keygen"))
    with pytest.raises(PreflightError) as missing:
        load_or_create_key("gitops-lab", Deadline(30))
    assert missing.value.one_line().startswith("age-keygen is not installed; install age (v1.3.1")
    path = key_path("gitops-lab")
    path.parent.mkdir(parents=True)
    path.write_text("not a key\n")
    with pytest.raises(UsageError) as damaged:
        load_or_create_key("gitops-lab", Deadline(30))
    assert damaged.value.one_line().startswith(f"{path} is not an age key file")
    assert path.read_text() == "not a key\n"


def test_sops_config_is_pushed_once_and_a_learners_own_is_never_overwritten(tmp_path, monkeypatch):
    from helpers.labenv import seeded_lab_env

    from gitops_lab.errors import UsageError
    from gitops_lab.workflows.secrets import write_sops_config

    _, wc, remote = seeded_lab_env(tmp_path, monkeypatch)
    _, recipient = make_key(tmp_path, "lab")
    sha = write_sops_config(wc, recipient)
    pushed = subprocess.run(
        ["git", "-C", str(remote), "show", f"{sha}:.sops.yaml"], check=True, capture_output=True, text=True
    ).stdout
    assert yaml.safe_load(pushed)["creation_rules"] == [
        {"path_regex": r".*\.ya?ml$", "encrypted_regex": "^(data|stringData)$", "age": recipient}
    ]
    assert write_sops_config(wc, recipient) is None
    _, other = make_key(tmp_path, "other")
    with pytest.raises(UsageError) as refused:
        write_sops_config(wc, other)
    assert f"does not name the lab's age key {other}" in refused.value.one_line()
    assert (wc / SOPS_CONFIG).read_text() == pushed

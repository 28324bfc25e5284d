"""The learner's own model-signing key (`gitops-lab models keygen|sign`), for real.

Real P-256 keys, real model-signing signatures, a real bare remote, and the
real policy gate: a model the learner signs with their key passes the
model-signature check once keygen has trusted that key; a key nobody trusted
is refused by name.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from helpers.gitutil import git
from helpers.labenv import lab_test_steps, seeded_lab_env
from helpers.renderer import needs_kustomize

from gitops_lab.gates import run_gates
from gitops_lab.gates.policy import check_signature
from gitops_lab.model.signing import generate_key, key_id, sign_artifact


@pytest.fixture
def lab(tmp_path, monkeypatch):
    return seeded_lab_env(tmp_path, monkeypatch)


def test_keygen_makes_the_key_once_0600_and_trusts_it_on_the_remote_in_one_commit(lab, tmp_path):
    cli, wc, remote = lab
    before = git(remote, "rev-parse", "main").strip()

    made = cli("models", "keygen", "--repo", str(wc), "--output", "json")

    assert made.exit_code == 0, made.output
    data = json.loads(made.stdout)
    private = tmp_path / "state" / "gitops-lab" / "model-signing" / "model-signing.key"
    assert data["key_created"] and data["key_file"] == str(private)
    assert private.stat().st_mode & 0o777 == 0o600
    # One commit on the remote, holding the public key and both trust lists; no private key in Git.
    head = git(remote, "rev-parse", "main").strip()
    assert data["commit"] == head and git(remote, "rev-parse", "main~1").strip() == before
    public = data["public_key"]
    assert public == f"base/keys/learner-{data['key_id'][:16]}.pub"
    changed = git(remote, "show", "--format=", "--name-only", head).split()
    assert sorted(changed) == sorted([public, "gates.yaml", "base/kustomization.yaml"])
    pem = git(remote, "show", f"{head}:{public}")
    assert "PUBLIC KEY" in pem and key_id(pem.encode()) == data["key_id"]
    leaked = subprocess.run(["git", "-C", str(remote), "grep", "-l", "BEGIN PRIVATE KEY", head], capture_output=True)
    assert leaked.returncode == 1, leaked.stdout  # no private key anywhere in the pushed tree
    gates = git(remote, "show", f"{head}:gates.yaml")
    assert yaml.safe_load(gates)["policy"]["trusted_keys"] == ["base/keys/gitops-lab-models.pub", public]
    assert "# The public keys (PEM files in this repository)" in gates  # the comments stay
    kustomization = yaml.safe_load(git(remote, "show", f"{head}:base/kustomization.yaml"))
    [keys] = [g for g in kustomization["configMapGenerator"] if g["name"] == "model-server-trusted-keys"]
    assert keys["files"] == ["keys/gitops-lab-models.pub", public.removeprefix("base/")]

    key_bytes = private.read_bytes()
    again = cli("models", "keygen", "--repo", str(wc), "--output", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {**data, "key_created": False, "commit": None}
    assert private.read_bytes() == key_bytes and git(remote, "rev-parse", "main").strip() == head


@needs_kustomize
def test_a_model_signed_with_the_learners_key_passes_and_an_untrusted_key_is_refused(lab, tmp_path):
    cli, wc, _ = lab
    learner = json.loads(cli("models", "keygen", "--repo", str(wc), "--output", "json").stdout)
    artifact = wc / "base" / "models" / "v4.json"
    model = json.loads(artifact.read_text())
    model["model"]["bias"] += 0.25  # the learner's own change to the model
    artifact.write_text(json.dumps(model, indent=2) + "\n")
    # Before signing, the shipped signature no longer matches: refused.
    [refused] = run_gates(wc, "dev", "staging", "v4", only=["policy"])
    assert not refused.passed and "was changed after it was signed" in refused.details[-1]

    signed = cli("models", "sign", str(artifact))
    assert signed.exit_code == 0, signed.output
    assert signed.stdout.strip() == f"signed {artifact} -> {artifact}.sig (key {learner['key_id'][:16]})"
    [ok] = run_gates(wc, "dev", "staging", "v4", only=["policy"])
    assert ok.passed, ok.details
    assert f"pass: base/models/v4.json signed by {learner['public_key']}" in ok.details[-1]

    stranger, _ = generate_key(tmp_path / "stranger")
    sign_artifact(artifact, stranger)
    problems, _ = check_signature(wc, "v4", yaml.safe_load((wc / "gates.yaml").read_text())["policy"]["trusted_keys"])
    [line] = problems
    stranger_id = key_id((tmp_path / "stranger" / "model-signing.pub").read_bytes())
    assert f"is signed by key {stranger_id[:16]}, which is not in the trusted set" in line
    assert learner["public_key"] in line


def test_a_damaged_key_file_is_one_line_and_is_never_replaced(lab, tmp_path):
    cli, wc, remote = lab
    private = tmp_path / "state" / "gitops-lab" / "model-signing" / "model-signing.key"
    private.parent.mkdir(parents=True)
    private.write_text("-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")
    head = git(remote, "rev-parse", "main")

    for args in (("models", "keygen", "--repo", str(wc)), ("models", "sign", str(wc / "base/models/v4.json"))):
        result = cli(*args)
        assert result.exit_code == 2
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {private} is not a P-256 private key in PEM (")
        assert "restore it from your backup" in line

    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----\nnot really")
    assert git(remote, "rev-parse", "main") == head


def test_sign_without_a_key_says_to_run_keygen(lab):
    cli, wc, _ = lab
    result = cli("models", "sign", str(wc / "base/models/v4.json"))
    assert result.exit_code == 2
    assert "no model-signing key for the environment yet" in result.stderr
    assert "gitops-lab models keygen" in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "policy:\n  checks: [model-signature]\n  trusted_keys: [base/keys/a.pub]  # who signs\nother: 1\n",
        "policy:\n  trusted_keys:\n    - base/keys/a.pub\n  # a comment\n  checks: [model-signature]\n",
        "policy:\n  checks: [model-signature]\n",
        "required: []\n",
    ],
    ids=["flow", "block", "no-trusted-keys", "no-policy"],
)
def test_gates_yaml_gets_the_key_in_any_layout_and_keeps_its_comments(text):
    from gitops_lab.workflows.signing_key import gates_with_key

    edited = gates_with_key(text, "base/keys/learner.pub")
    assert edited is not None
    trusted = yaml.safe_load(edited)["policy"]["trusted_keys"]
    assert trusted[-1] == "base/keys/learner.pub" and trusted[:-1] == (["base/keys/a.pub"] if "a.pub" in text else [])
    for line in text.splitlines():
        if "#" in line:
            assert line.split("#", 1)[1] in edited


@needs_kustomize
def test_the_supply_chain_lab_passes_lab_test_without_a_cluster(lab):
    """`lab test`: each step's check fails after setup and passes after its solution, the own-key step included."""
    cli, wc, _ = lab
    assert lab_test_steps(cli, wc, "supply-chain") == [
        ("tampered-artifact", "passed"),
        ("read-the-evidence", "passed"),
        ("sign-your-own", "passed"),
        ("reset", "passed"),
    ]

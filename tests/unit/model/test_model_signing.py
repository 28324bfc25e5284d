"""The signed model supply chain, for real: model-signing signs, the policy gate and the model server verify.

No signer is mocked: keys are generated here, artifacts signed with OpenSSF's
model-signing, and checked by its verifier (the gate) and by the server's
standard-library verifier (a real server process).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gitops_lab.gates import run_gates
from gitops_lab.model.signing import (
    SignatureError,
    generate_key,
    load_trusted_keys,
    sign_artifact,
    signature_path,
    verify_artifact,
)
from gitops_lab.resources import environments_template
from helpers.renderer import needs_kustomize

SHIPPED_KEY = "base/keys/gitops-lab-models.pub"


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(environments_template(), root)
    return root


@pytest.fixture
def key(tmp_path) -> tuple[Path, Path]:
    return generate_key(tmp_path / "key")


def _reason(artifact: Path, trusted) -> tuple[str, str]:
    with pytest.raises(SignatureError) as caught:
        verify_artifact(artifact, trusted, "base/models/v2.json")
    return caught.value.reason, caught.value.one_line()


def test_every_shipped_artifact_verifies_with_the_shipped_key(tree):
    trusted = load_trusted_keys(tree, [SHIPPED_KEY])
    for artifact in sorted((tree / "base" / "models").glob("v*.json")):
        assert verify_artifact(artifact, trusted).path == SHIPPED_KEY


def test_private_key_is_written_0600(key):
    private, public = key
    assert private.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()


def test_sign_then_verify_names_the_key(tree, key):
    private, public = key
    artifact = tree / "base" / "models" / "v2.json"
    sign_artifact(artifact, private)
    shutil.copy(public, tree / "base" / "keys" / "mine.pub")
    trusted = load_trusted_keys(tree, [SHIPPED_KEY, "base/keys/mine.pub"])
    assert verify_artifact(artifact, trusted).path == "base/keys/mine.pub"


def test_tampered_artifact_fails(tree):
    artifact = tree / "base" / "models" / "v2.json"
    data = json.loads(artifact.read_text())
    data["model"]["bias"] += 0.5
    artifact.write_text(json.dumps(data))
    reason, line = _reason(artifact, load_trusted_keys(tree, [SHIPPED_KEY]))
    assert reason == "tampered"
    assert line.startswith("base/models/v2.json was changed after it was signed") and "git checkout" in line


def test_one_byte_of_whitespace_is_tampering(tree):
    artifact = tree / "base" / "models" / "v2.json"
    artifact.write_bytes(artifact.read_bytes() + b"\n")
    assert _reason(artifact, load_trusted_keys(tree, [SHIPPED_KEY]))[0] == "tampered"


def test_missing_signature_fails(tree):
    artifact = tree / "base" / "models" / "v2.json"
    signature_path(artifact).unlink()
    reason, line = _reason(artifact, load_trusted_keys(tree, [SHIPPED_KEY]))
    assert reason == "missing" and line.startswith("base/models/v2.json is not signed (no v2.json.sig); sign it")


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: "garbage",
        lambda text: text[: len(text) // 2],
        lambda text: json.dumps({**json.loads(text), "dsseEnvelope": {"payload": "!!", "signatures": []}}),
    ],
    ids=["not-json", "truncated", "no-envelope"],
)
def test_damaged_signature_file_fails(tree, damage):
    artifact = tree / "base" / "models" / "v2.json"
    sig = signature_path(artifact)
    sig.write_text(damage(sig.read_text()))
    reason, line = _reason(artifact, load_trusted_keys(tree, [SHIPPED_KEY]))
    assert (
        reason == "damaged" and "signature v2.json.sig is damaged" in line and "sign base/models/v2.json again" in line
    )


def test_flipped_signature_bit_does_not_verify(tree):
    artifact = tree / "base" / "models" / "v2.json"
    sig = signature_path(artifact)
    bundle = json.loads(sig.read_text())
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-2] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(bundle))
    reason, line = _reason(artifact, load_trusted_keys(tree, [SHIPPED_KEY]))
    assert reason == "bad-signature" and "does not verify with base/keys/gitops-lab-models.pub" in line


def test_unknown_key_fails(tree, key):
    private, _ = key
    artifact = tree / "base" / "models" / "v2.json"
    sign_artifact(artifact, private)  # a valid signature, by a key nobody trusts
    reason, line = _reason(artifact, load_trusted_keys(tree, [SHIPPED_KEY]))
    assert reason == "untrusted-key"
    assert "not in the trusted set (base/keys/gitops-lab-models.pub)" in line and "policy.trusted_keys" in line


def test_trusted_key_that_is_not_a_key_names_the_file(tree):
    (tree / "base" / "keys" / "bad.pub").write_text("not a key\n")
    with pytest.raises(SignatureError, match=r"trusted key base/keys/bad\.pub is not a PEM public key"):
        load_trusted_keys(tree, ["base/keys/bad.pub"])
    with pytest.raises(SignatureError, match=r"trusted key base/keys/gone\.pub cannot be read"):
        load_trusted_keys(tree, ["base/keys/gone.pub"])


# --------------------------------------------------------------------------- #
# The policy gate and promote: exit 4, one line, nothing changed.
# --------------------------------------------------------------------------- #
@needs_kustomize
def test_policy_gate_passes_signed_and_fails_tampered(tree):
    [ok] = run_gates(tree, "dev", "staging", "v2", only=["policy"])
    assert ok.passed and "pass: base/models/v2.json signed by base/keys/gitops-lab-models.pub" in ok.details[-1]
    artifact = tree / "base" / "models" / "v2.json"
    artifact.write_bytes(artifact.read_bytes().replace(b'"v2"', b' "v2"', 1))
    [bad] = run_gates(tree, "dev", "staging", "v2", only=["policy"])
    assert not bad.passed
    assert bad.details == [
        "fail: base/models/v2.json was changed after it was signed (its SHA-256 is not the one v2.json.sig signs); "
        "restore the signed bytes (`git checkout gitops-lab/seed -- base/models/v2.json`, or revert the change), "
        "or retrain and sign it in the pipeline"
    ]


@needs_kustomize
def test_policy_gate_without_the_check_ignores_signatures(tree):
    signature_path(tree / "base" / "models" / "v2.json").write_text("damaged")
    gates = tree / "gates.yaml"
    data = yaml.safe_load(gates.read_text())
    data["policy"]["checks"].remove("model-signature")
    gates.write_text(yaml.safe_dump(data))
    [ok] = run_gates(tree, "dev", "staging", "v2", only=["policy"])
    assert ok.passed


@needs_kustomize
def test_promote_of_tampered_artifact_is_blocked_with_exit_4_and_changes_nothing(lab, cli):
    wc, remote = lab
    artifact = wc / "base" / "models" / "v2.json"
    artifact.write_bytes(artifact.read_bytes() + b" ")
    subprocess.run(["git", "-C", str(wc), "commit", "-qam", "Tamper with v2"], check=True)
    subprocess.run(["git", "-C", str(wc), "push", "-q", "origin", "main"], check=True)
    before = subprocess.run(["git", "-C", str(wc), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    remote_before = subprocess.run(["git", "-C", str(remote), "rev-parse", "main"], capture_output=True, text=True)

    result = cli("promote", "--from", "dev", "--to", "staging", "--version", "v2", "--no-wait")

    assert result.exit_code == 4
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: promotion of v2 to staging blocked by 1 failing gate: policy")
    assert "base/models/v2.json was changed after it was signed" in line and "nothing was changed" in line
    assert subprocess.run(["git", "-C", str(wc), "rev-parse", "HEAD"], capture_output=True, text=True).stdout == before
    after = subprocess.run(["git", "-C", str(remote), "rev-parse", "main"], capture_output=True, text=True)
    assert after.stdout == remote_before.stdout
    assert "model-version: v1" in (wc / "overlays" / "staging" / "kustomization.yaml").read_text()


# --------------------------------------------------------------------------- #
# The model server (standard library only) with VERIFY_SIGNATURE=1.
# --------------------------------------------------------------------------- #
@pytest.fixture
def served(tree, monkeypatch) -> Path:
    """The shipped models and keys, with the server told to verify."""
    monkeypatch.setenv("VERIFY_SIGNATURE", "1")
    monkeypatch.setenv("TRUSTED_KEYS_DIR", str(tree / "base" / "keys"))
    return tree / "base" / "models"


def test_server_serves_a_verified_artifact(served, start_server):
    server = start_server("v2", served)
    assert server.json("GET", "/readyz")[0] == 200
    assert server.json("GET", "/version")[1]["model_version"] == "v2"


def test_server_refuses_a_tampered_artifact(served, start_server):
    artifact = served / "v2.json"
    artifact.write_bytes(artifact.read_bytes().replace(b'"v2"', b' "v2"', 1))
    server = start_server("v2", served)
    status, body = server.json("GET", "/readyz")
    assert status == 503 and "was changed after it was signed" in json.dumps(body)
    assert server.json("POST", "/predict", {"instances": []})[0] == 503


def test_server_refuses_a_missing_signature_and_an_unknown_key(served, start_server, key):
    signature_path(served / "v2.json").unlink()
    assert "is not signed" in "".join(start_server("v2", served).log)
    private, _ = key
    sign_artifact(served / "v3.json", private)
    server = start_server("v3", served)
    assert server.json("GET", "/readyz")[0] == 503
    assert "not among the trusted keys" in "".join(server.log)


def test_server_refuses_a_damaged_signature(served, start_server):
    sig = signature_path(served / "v2.json")
    bundle = json.loads(sig.read_text())
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-2] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(bundle))
    server = start_server("v2", served)
    assert server.json("GET", "/readyz")[0] == 503 and "does not verify" in "".join(server.log)


def test_server_without_verification_serves_an_unsigned_artifact(tree, start_server, monkeypatch):
    monkeypatch.delenv("VERIFY_SIGNATURE", raising=False)
    signature_path(tree / "base" / "models" / "v2.json").unlink()
    assert start_server("v2", tree / "base" / "models").json("GET", "/readyz")[0] == 200

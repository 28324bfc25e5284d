"""Signing model artifacts, and checking their signatures against a set of trusted keys.

The signer is OpenSSF's ``model-signing`` with its elliptic-curve private-key
method: offline, no certificate authority, no transparency log. Signing
``base/models/v2.json`` writes ``base/models/v2.json.sig``, a Sigstore bundle
(JSON) holding a DSSE envelope over an in-toto statement that records the
artifact's SHA-256; the envelope is signed with ECDSA (P-256 and SHA-256).
The bundle names its key only by a hint, the SHA-256 of the public key's PEM
(``key_id``), which is how a verifier picks the trusted key to check it with.

The model server checks the same bundle with the standard library alone
(``environments/base/server.py``), so the format is relied on in two places:
see docs/supply-chain.md.

Run it as ``python -m gitops_lab.model.signing keygen|sign|verify`` (the
pipeline's train stage signs with ``$MODEL_SIGNING_KEY``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.errors import GitOpsLabError

#: Where an artifact's signature lives: beside it, with this suffix.
SIGNATURE_SUFFIX = ".sig"
SIGNATURE_LIMIT = 64 * 1024
#: The file names a key pair is written to by ``keygen``.
PRIVATE_KEY_FILE = "model-signing.key"
PUBLIC_KEY_FILE = "model-signing.pub"


class SignatureError(GitOpsLabError):
    """An artifact's signature is missing, damaged, made by an untrusted key, or does not match its bytes."""

    exit_code = 4

    def __init__(self, message: str, fix: str | None = None, reason: str = "invalid"):
        super().__init__(message, fix)
        self.reason = reason  # missing, damaged, untrusted-key, tampered, bad-signature, bad-key


#: Where a fix says the candidate gets signed: the platform pipeline's training stage, which needs data preparation's handoff.
PIPELINE_SIGNS = (
    "the pipeline's training stage: `python -m gitops_lab.pipeline data-preparation`, then `... training` "
    "with MODEL_SIGNING_KEY set"
)


def signature_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + SIGNATURE_SUFFIX)


def key_id(public_pem: bytes) -> str:
    """The hint a bundle names its key by: SHA-256 of the public key's PEM (model-signing's convention)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem)
    canonical = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(canonical).hexdigest()


def generate_key(folder: Path) -> tuple[Path, Path]:
    """A new P-256 key pair in ``folder``: the private key 0600 (never commit it), the public key beside it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / PRIVATE_KEY_FILE, folder / PUBLIC_KEY_FILE
    if private.exists():
        raise GitOpsLabError(f"{private} exists", fix="keep it, or move it away first to make a new key")
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def sign_artifact(artifact: Path, private_key: Path) -> Path:
    """Sign ``artifact`` with the PEM private key; returns the signature's path (``<artifact>.sig``)."""
    from model_signing import hashing, signing

    if not artifact.is_file():
        raise GitOpsLabError(f"no artifact {artifact} to sign", fix="train it first (python -m gitops_lab.model.train)")
    try:
        config = signing.Config().use_elliptic_key_signer(private_key=private_key)
    except (OSError, ValueError, TypeError) as error:
        raise GitOpsLabError(
            f"cannot use {private_key} as a signing key: {error}",
            fix="give an unencrypted P-256 private key in PEM (`python -m gitops_lab.model.signing keygen DIR`)",
        ) from None
    config.set_hashing_config(hashing.Config().use_file_serialization(hashing_algorithm="sha256"))
    out = signature_path(artifact)
    config.sign(artifact, out)
    return out


@dataclass
class TrustedKey:
    path: str  # as gates.yaml names it, relative to the repository
    pem: bytes
    key_id: str


def load_trusted_keys(root: Path, paths: list[str]) -> list[TrustedKey]:
    """The public keys gates.yaml trusts; SignatureError naming the file when one is missing or not a key."""
    keys = []
    for name in paths:
        path = root / name
        fix = "commit the PEM public key there, or remove it from policy.trusted_keys in gates.yaml"
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise SignatureError(
                f"trusted key {name} cannot be read ({error.strerror or error})", fix=fix, reason="bad-key"
            ) from None
        try:
            keys.append(TrustedKey(name, pem, key_id(pem)))
        except (ValueError, TypeError) as error:
            raise SignatureError(
                f"trusted key {name} is not a PEM public key ({error})", fix=fix, reason="bad-key"
            ) from None
    return keys


def _bundle_key_id(sig: Path, shown: str) -> str:
    """The key hint of a bundle, or SignatureError(damaged) when the file is not a model-signing bundle."""
    fix = f"sign {shown} again with the pipeline's key ({PIPELINE_SIGNS})"
    try:
        if sig.stat().st_size > SIGNATURE_LIMIT:
            raise ValueError(f"larger than {SIGNATURE_LIMIT} bytes")
        bundle = json.loads(sig.read_bytes())
        hint = bundle["verificationMaterial"]["publicKey"]["hint"]
        envelope = bundle["dsseEnvelope"]
        base64.b64decode(envelope["payload"], validate=True)
        base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
        if not isinstance(hint, str) or not hint:
            raise ValueError("no key hint")
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise SignatureError(
            f"{shown}: signature {sig.name} is damaged (not a model-signing bundle: {error!r})",
            fix=fix,
            reason="damaged",
        ) from None
    return hint


def verify_artifact(artifact: Path, trusted: list[TrustedKey], shown: str | None = None) -> TrustedKey:
    """Check ``artifact`` against its signature and the trusted keys; the key that signed it, or SignatureError.

    ``shown`` is how messages name the artifact (e.g. ``base/models/v2.json``).
    """
    from cryptography.exceptions import InvalidSignature
    from model_signing import verifying

    shown = shown or str(artifact)
    sig = signature_path(artifact)
    resign = f"sign {shown} again with the pipeline's key ({PIPELINE_SIGNS})"
    if not sig.is_file():
        raise SignatureError(
            f"{shown} is not signed (no {sig.name})",
            fix=f"sign it with a trusted key ({PIPELINE_SIGNS}), or promote a signed version",
            reason="missing",
        )
    hint = _bundle_key_id(sig, shown)
    key = next((k for k in trusted if k.key_id == hint), None)
    if key is None:
        names = ", ".join(k.path for k in trusted) or "none"
        raise SignatureError(
            f"{shown} is signed by key {hint[:16]}, which is not in the trusted set ({names})",
            fix="sign it with a trusted key, or add that key's public PEM to policy.trusted_keys in gates.yaml "
            "(a reviewed change)",
            reason="untrusted-key",
        )
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pub") as pub:
        pub.write(key.pem)
        pub.flush()
        try:
            verifying.Config().use_elliptic_key_verifier(public_key=pub.name).verify(artifact, sig)
        except InvalidSignature:
            raise SignatureError(
                f"{shown}: signature {sig.name} does not verify with {key.path} (the signature or what it signs was altered)",
                fix=resign,
                reason="bad-signature",
            ) from None
        except ValueError as error:
            if "mismatch" not in str(error).lower():
                raise SignatureError(
                    f"{shown}: signature {sig.name} is damaged ({error})", fix=resign, reason="damaged"
                ) from None
            raise SignatureError(
                f"{shown} was changed after it was signed (its SHA-256 is not the one {sig.name} signs)",
                fix=f"restore the signed bytes (`git checkout gitops-lab/seed -- {shown}`, or revert the change), "
                "or retrain and sign it in the pipeline",
                reason="tampered",
            ) from None
        except Exception as error:  # protobuf and base64 errors of a bundle that parses as JSON but is not one
            raise SignatureError(
                f"{shown}: signature {sig.name} is damaged ({type(error).__name__}: {error})",
                fix=resign,
                reason="damaged",
            ) from None
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitops_lab.model.signing", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="write a new key pair (model-signing.key 0600, model-signing.pub)")
    keygen.add_argument("folder", type=Path)
    sign = sub.add_parser("sign", help="sign artifacts: writes <artifact>.sig")
    sign.add_argument("--key", type=Path, required=True, help="the PEM private key")
    sign.add_argument("artifacts", type=Path, nargs="+")
    verify = sub.add_parser("verify", help="check artifacts against their signatures and trusted public keys")
    verify.add_argument("--key", dest="keys", type=str, action="append", required=True, help="a trusted public key")
    verify.add_argument("artifacts", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            private, public = generate_key(args.folder)
            print(f"wrote {private} (private, 0600: never commit it) and {public} (public: commit it, trust it)")
        elif args.command == "sign":
            for artifact in args.artifacts:
                print(f"signed {artifact} -> {sign_artifact(artifact, args.key)}")
        else:
            trusted = load_trusted_keys(Path("."), args.keys)
            for artifact in args.artifacts:
                key = verify_artifact(artifact, trusted)
                print(f"verified {artifact}: signed by {key.path} ({key.key_id[:16]})")
    except GitOpsLabError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Secrets kept encrypted in Git: a Secret manifest passes only in SOPS' form, for the lab's age key.

SOPS (with age keys) encrypts the values of a Secret's ``data`` and
``stringData`` in place and adds a ``sops:`` block naming the recipients the
file was encrypted for. Flux's kustomize-controller decrypts such a file when
it applies it (``spec.decryption.provider: sops``), with the private key from a
Secret in its namespace; in Git only ciphertext remains.

This module judges a manifest as committed, without decrypting it (the gate
holds no private key): every value must be SOPS ciphertext, and one of the
``sops.age`` recipients must be a recipient the lab's ``.sops.yaml`` names,
or the cluster could not decrypt it. The policy gate's ``plaintext-secrets``
check calls it for every rendered Secret, on both engines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

SOPS_CONFIG = ".sops.yaml"
#: A SOPS-encrypted value: AES-256-GCM ciphertext, its IV and tag, and the plaintext's type.
_CIPHERTEXT = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:\w+\]")
_AGE_RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")
INIT_FIX = "run `gitops-lab secrets init` (it writes the lab's age recipient to .sops.yaml and pushes it)"


def encrypt_fix(name: str) -> str:
    return (
        f"encrypt it with the lab's key: `sops encrypt --in-place <the file of Secret/{name}>` in the lab "
        f"repository (its {SOPS_CONFIG} names the recipient), then commit the encrypted file"
    )


def lab_recipients(root: Path) -> tuple[list[str], str | None]:
    """(the age recipients ``.sops.yaml`` at ``root`` names, None) or ([], why there are none)."""
    path = root / SOPS_CONFIG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], f"the repository has no {SOPS_CONFIG}, so no Secret can be encrypted for the lab: {INIT_FIX}"
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return [], f"{SOPS_CONFIG} cannot be read ({str(error).splitlines()[0]}): fix it, or {INIT_FIX}"
    found: list[str] = []
    rules = data.get("creation_rules") if isinstance(data, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        if isinstance(rule, dict):
            found += [r for r in _AGE_RECIPIENT.findall(str(rule.get("age") or "")) if r not in found]
    if not found:
        return [], f"{SOPS_CONFIG} names no age recipient in creation_rules: {INIT_FIX}"
    return found, None


def secret_problems(obj: dict[str, Any], recipients: list[str], config_problem: str | None = None) -> list[str]:
    """Why the Secret ``obj`` is not safely encrypted for ``recipients``, one line each; [] when it is.

    An empty Secret (no data, no stringData) holds nothing to leak and passes.
    """
    name = (obj.get("metadata") or {}).get("name", "?")
    where = f"Secret/{name}"
    values = {
        f"{field}.{key}": value
        for field in ("data", "stringData")
        if isinstance(obj.get(field), dict)
        for key, value in obj[field].items()
    }
    if not values:
        return []
    metadata = obj.get("sops")
    if not isinstance(metadata, dict):
        shown = ", ".join(sorted(k.split(".", 1)[1] for k in values))
        return [f"{where}: Secret with plaintext data in Git ({shown}); {encrypt_fix(name)}"]
    problems = []
    plain = sorted(k for k, v in values.items() if not (isinstance(v, str) and _CIPHERTEXT.fullmatch(v)))
    if plain:
        problems.append(
            f"{where}: SOPS-encrypted, but {', '.join(plain)} {'is' if len(plain) == 1 else 'are'} plaintext "
            f"(an encrypted_regex or unencrypted_suffix left {'it' if len(plain) == 1 else 'them'} out); "
            f"{encrypt_fix(name)}"
        )
    if not (isinstance(metadata.get("mac"), str) and _CIPHERTEXT.fullmatch(metadata["mac"])):
        problems.append(
            f"{where}: its sops block has no MAC, so the file was edited by hand or damaged; {encrypt_fix(name)}"
        )
    age = metadata.get("age")
    entries: list[Any] = age if isinstance(age, list) else []
    used = [str(e.get("recipient")) for e in entries if isinstance(e, dict) and e.get("recipient")]
    if config_problem:
        problems.append(f"{where}: {config_problem}")
    elif not used:
        problems.append(
            f"{where}: encrypted for no age key (another SOPS key type?), so the lab's cluster cannot decrypt it; "
            f"{encrypt_fix(name)}"
        )
    elif not set(used) & set(recipients):
        problems.append(
            f"{where}: encrypted for {', '.join(_short(r) for r in used)}, not for the lab's key "
            f"({', '.join(_short(r) for r in recipients)} in {SOPS_CONFIG}), so the cluster cannot decrypt it; "
            "re-encrypt it for the lab's key (`sops updatekeys <file>` after fixing .sops.yaml, or encrypt it again)"
        )
    return problems


def _short(recipient: str) -> str:
    return f"{recipient[:12]}…{recipient[-6:]}"

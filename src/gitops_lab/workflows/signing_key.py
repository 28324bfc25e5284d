"""`gitops-lab models keygen` / `models sign`: the learner's own model-signing key.

The key pair is made once (P-256, by model-signing's key helper) in the
environment's state folder: the private key 0600, never in Git. A key that
exists is reused and never replaced, even when damaged: artifacts signed with
it would stop verifying. Its public half is trusted through Git, in one
published-or-undone commit that
- writes it to ``base/keys/learner-<key id>.pub``,
- adds that file to ``policy.trusted_keys`` in gates.yaml (what the policy
  gate's model-signature check accepts), and
- adds it to the ``model-server-trusted-keys`` ConfigMap in
  base/kustomization.yaml (what the model server accepts with VERIFY_SIGNATURE),
so the gate and the server never disagree about a signer. Both files are edited
as text, line by line, so their comments stay; the result is parsed back and
compared with what was meant. Running it again changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo.git import Git
from gitops_lab.errors import UsageError
from gitops_lab.gates.config import CONFIG_FILE, config_from_text
from gitops_lab.model.signing import PRIVATE_KEY_FILE, generate_key, key_id, sign_artifact
from gitops_lab.state import environment_dir

KEY_FOLDER = "model-signing"
KUSTOMIZATION = "base/kustomization.yaml"
TRUSTED_KEYS_CONFIGMAP = "model-server-trusted-keys"


@dataclass
class LearnerKey:
    private_path: Path
    public_pem: bytes
    key_id: str
    created: bool

    @property
    def repo_path(self) -> str:
        """Where the public key is committed: named by its id, so a new key never overwrites an old one."""
        return f"base/keys/learner-{self.key_id[:16]}.pub"


def private_key_path(env_name: str) -> Path:
    return environment_dir(env_name) / KEY_FOLDER / PRIVATE_KEY_FILE


def _damaged(path: Path, why: str) -> UsageError:
    return UsageError(
        f"{path} is not a P-256 private key in PEM ({why})",
        fix="restore it from your backup (artifacts signed with it need it); only if you never signed with it, "
        "delete it and run `gitops-lab models keygen` again",
    )


def load_key(env_name: str) -> LearnerKey:
    """The learner's existing key; UsageError when there is none yet or it is damaged (the file is left as is)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = private_key_path(env_name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"no model-signing key for the environment yet ({path})",
            fix="run `gitops-lab models keygen` first: it makes the key and trusts it in gates.yaml",
        ) from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}", fix=f"make {path} readable") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise _damaged(path, str(error).split(". ")[0] or type(error).__name__) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise _damaged(path, f"a {type(key).__name__} key")
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return LearnerKey(path, public, key_id(public), created=False)


def load_or_create_key(env_name: str) -> LearnerKey:
    """The learner's key: reused when it exists (a damaged one is refused, never replaced), else made now."""
    path = private_key_path(env_name)
    if path.exists():
        return load_key(env_name)
    try:
        generate_key(path.parent)
    except OSError as error:
        raise UsageError(
            f"cannot write {path}: {error.strerror or error}",
            fix=f"make {path.parent} writable, or point $GITOPS_LAB_STATE_DIR at a folder you can write",
        ) from None
    key = load_key(env_name)
    key.created = True
    return key


# --------------------------------------------------------------------------- #
# Trusting the key in the lab repository: two text edits, checked by parsing.
# --------------------------------------------------------------------------- #
def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], start: int, parent_indent: int) -> int:
    """The index after the last line belonging to the block that starts below ``lines[start]``."""
    end = start + 1
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#") and _indent(lines[i]) <= parent_indent:
            break
        if stripped:
            end = i + 1
    return end


def _append_to_list(lines: list[str], key_line: int, entry: str) -> bool:
    """Append ``entry`` to the YAML list whose key is on ``lines[key_line]`` (flow or block form)."""
    line = lines[key_line]
    key, _, rest = line.partition(":")
    value, hash_, comment = rest.partition(" #")
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        items = [item.strip() for item in value[1:-1].split(",") if item.strip()]
        lines[key_line] = f"{key}: [{', '.join([*items, entry])}]" + (f"  #{comment}" if hash_ else "")
        return True
    if value:
        return False
    end = _block_end(lines, key_line, _indent(line))
    rows = [i for i in range(key_line + 1, end) if lines[i].lstrip().startswith("- ")]
    item_indent = _indent(lines[rows[-1]]) if rows else _indent(line) + 2
    lines.insert((rows[-1] + 1) if rows else key_line + 1, " " * item_indent + f"- {entry}")
    return True


def _find_key(lines: list[str], name: str, start: int = 0, end: int | None = None, indent: int | None = None) -> int:
    pattern = re.compile(rf"^\s*{re.escape(name)}:(\s|$)")
    for i in range(start, len(lines) if end is None else end):
        if pattern.match(lines[i]) and (indent is None or _indent(lines[i]) == indent):
            return i
    return -1


def gates_with_key(text: str, entry: str) -> str | None:
    """gates.yaml's text with ``entry`` added to policy.trusted_keys (comments kept); None when it cannot be
    edited safely (an unusual layout), so the caller asks the learner to do it."""
    lines = text.splitlines()
    policy = _find_key(lines, "policy", indent=0)
    if policy < 0:
        lines += ["policy:", f"  trusted_keys: [{entry}]"]
    else:
        end = _block_end(lines, policy, 0)
        trusted = _find_key(lines, "trusted_keys", policy + 1, end)
        if trusted < 0:
            child = next((_indent(lines[i]) for i in range(policy + 1, end) if lines[i].strip()), 2)
            lines.insert(policy + 1, " " * child + f"trusted_keys: [{entry}]")
        elif not _append_to_list(lines, trusted, entry):
            return None
    return "\n".join(lines) + "\n"


def kustomization_with_key(text: str, entry: str) -> str | None:
    """base/kustomization.yaml with ``entry`` (relative to base/) in the trusted-keys ConfigMap's files."""
    lines = text.splitlines()
    named = next((i for i, line in enumerate(lines) if line.strip() == f"- name: {TRUSTED_KEYS_CONFIGMAP}"), -1)
    if named < 0:
        return None
    end = _block_end(lines, named, _indent(lines[named]))
    files = _find_key(lines, "files", named + 1, end)
    if files < 0 or not _append_to_list(lines, files, entry):
        return None
    return "\n".join(lines) + "\n"


def _trusted_in(gates_text: str | None, kustomization_text: str) -> tuple[list[str], list[str]]:
    """(gates.yaml's policy.trusted_keys, the trusted-keys ConfigMap's files) of these two files' texts."""
    trusted = list(config_from_text(gates_text).settings["policy"].get("trusted_keys") or [])
    try:
        kustomization = yaml.safe_load(kustomization_text)
    except yaml.YAMLError:
        return trusted, []
    files: list[str] = []
    generators = kustomization.get("configMapGenerator") if isinstance(kustomization, dict) else None
    for generator in generators or []:
        if isinstance(generator, dict) and generator.get("name") == TRUSTED_KEYS_CONFIGMAP:
            files = [str(f) for f in generator.get("files") or []]
    return trusted, files


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _edit_by_hand(path: str, entry: str) -> UsageError:
    return UsageError(
        f"{path} is laid out in a way gitops-lab will not edit automatically, so the key was not trusted",
        fix=f"add {entry} there yourself (docs/supply-chain.md), commit and push",
    )


def trust_key(repo: Path, key: LearnerKey) -> str | None:
    """Commit and push the public key, trusted by the gate and the server; the commit, or None when it already is."""
    git = Git(repo)
    publish.check_clean(git)
    publish.catch_up(git)
    entry = key.repo_path
    served = entry.removeprefix("base/")
    public = repo / entry
    gates_text, kustomization_text = _read(repo / CONFIG_FILE), _read(repo / KUSTOMIZATION) or ""
    trusted, files = _trusted_in(gates_text, kustomization_text)
    same_file = public.is_file() and public.read_bytes() == key.public_pem
    if same_file and entry in trusted and served in files:
        return None
    new_gates = gates_text if entry in trusted else gates_with_key(gates_text or "", entry)
    new_kustomization = kustomization_text if served in files else kustomization_with_key(kustomization_text, served)
    # Parsed back before anything is written: an edit that did not land where meant is refused, not committed.
    if new_gates is None or entry not in _trusted_in(new_gates, "")[0]:
        raise _edit_by_hand(f"{CONFIG_FILE}'s policy.trusted_keys", entry)
    if new_kustomization is None or served not in _trusted_in(None, new_kustomization)[1]:
        raise _edit_by_hand(f"the {TRUSTED_KEYS_CONFIGMAP} ConfigMap in {KUSTOMIZATION}", served)
    with publish.published_or_undone(git, "the commit trusting your model-signing key"):
        public.parent.mkdir(parents=True, exist_ok=True)
        public.write_bytes(key.public_pem)
        (repo / CONFIG_FILE).write_text(new_gates, encoding="utf-8")
        (repo / KUSTOMIZATION).write_text(new_kustomization, encoding="utf-8")
        sha = publish.commit(
            git,
            [entry, CONFIG_FILE, KUSTOMIZATION],
            f"Trust the learner's model-signing key {key.key_id[:16]}\n\n"
            f"Its public half is {entry}; the private half stays in the environment's state folder.\n",
        )
        publish.push(git)
    return sha


def sign_with_learner_key(env_name: str, artifacts: list[Path]) -> tuple[LearnerKey, list[Path]]:
    """Sign each artifact with the learner's key (``<artifact>.sig`` beside it)."""
    key = load_key(env_name)
    return key, [sign_artifact(artifact, key.private_path) for artifact in artifacts]

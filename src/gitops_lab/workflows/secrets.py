"""`gitops-lab secrets init`: the lab's age key, so Secrets live in Git only encrypted (SOPS).

Three places, each written only when it is not already right (so it runs again safely):
- the key pair, made by the real ``age-keygen``, kept in the environment's state folder (0600);
  a key that exists is reused, never replaced, since files encrypted for it would become unreadable;
- ``.sops.yaml`` in the lab repository (committed and pushed, or undone): the public recipient,
  and ``encrypted_regex`` so only ``data``/``stringData`` are encrypted and the engine can still
  read the manifest's kind and name;
- in the cluster, the Secret ``sops-age`` (data ``age.agekey``) in the engine's namespace, and the
  lab's environments told to decrypt with it: on Flux ``spec.decryption`` on the Kustomizations
  (kustomize-controller imports entries ending in .agekey); on Argo CD the Applications render with
  the lab's config-management plugin, whose sidecar has the Secret mounted (argocd_sops.py).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gitops_lab.adapters.engines.base import SOPS_KEY_DATA, SOPS_KEY_SECRET
from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.deadline import Deadline
from gitops_lab.errors import PreflightError, UsageError
from gitops_lab.gates.ci_tools import find_tool
from gitops_lab.gates.sops_secrets import SOPS_CONFIG, lab_recipients
from gitops_lab.processes import run_bounded
from gitops_lab.state import environment_dir, write_private_text
from gitops_lab.workflows.environment import LabEnvironment

KEY_FILE = "age.agekey"
KEY_DATA = SOPS_KEY_DATA
KEYGEN_VAR = "GITOPS_LAB_AGE_KEYGEN"
KEYGEN_FIX = (
    f"install age (v1.3.1: `go install filippo.io/age/cmd/age-keygen@v1.3.1`, or scripts/install-ci-tools), "
    f"or put age-keygen on PATH or in ${KEYGEN_VAR}"
)
_RECIPIENT = re.compile(r"^# public key: (age1[0-9a-z]+)$", re.MULTILINE)
#: Only a Secret's values are encrypted: kind, name and namespace stay readable to the engine and to reviewers.
ENCRYPTED_REGEX = "^(data|stringData)$"


@dataclass
class SecretsSetup:
    recipient: str
    key_path: Path
    key_created: bool
    commit: str | None  # the commit that wrote .sops.yaml; None when it already named the key
    changed: list[str] = field(default_factory=list)  # cluster objects created or changed
    engine_note: str = ""


def key_path(env_name: str) -> Path:
    return environment_dir(env_name) / KEY_FILE


def load_or_create_key(env_name: str, deadline: Deadline) -> tuple[str, str, bool]:
    """(the age identity file's text, its public recipient, whether it was made now)."""
    path = key_path(env_name)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        found = _RECIPIENT.search(text)
        if not found or "AGE-SECRET-KEY-1" not in text:
            raise UsageError(
                f"{path} is not an age key file (no '# public key:' line or no AGE-SECRET-KEY)",
                fix="restore it from your backup (files encrypted for it need it); only if none was ever used, "
                "delete it and run `gitops-lab secrets init` again",
            )
        return text, found.group(1), False
    keygen = find_tool("age-keygen", KEYGEN_VAR)
    if keygen is None:
        raise PreflightError("age-keygen is not installed", fix=KEYGEN_FIX)
    try:
        made = run_bounded([keygen], timeout=min(30.0, deadline.remaining()))
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PreflightError(f"age-keygen could not run: {error}", fix=KEYGEN_FIX) from error
    found = _RECIPIENT.search(made.stdout)
    if made.returncode != 0 or not found:
        said = (made.stderr.strip().splitlines() or ["no public key in its output"])[-1]
        raise PreflightError(f"age-keygen failed: {said}", fix=KEYGEN_FIX)
    write_private_text(path, made.stdout, mode=0o600)
    return made.stdout, found.group(1), True


def sops_config_text(recipient: str) -> str:
    rules = {"creation_rules": [{"path_regex": r".*\.ya?ml$", "encrypted_regex": ENCRYPTED_REGEX, "age": recipient}]}
    header = (
        "# SOPS encrypts Secrets for the lab's age key (`gitops-lab secrets init`; docs/secrets.md).\n"
        "# Encrypt:  sops encrypt --in-place overlays/<env>/<secret>.yaml\n"
    )
    return header + yaml.safe_dump(rules, sort_keys=False)


def write_sops_config(repo: Path, recipient: str) -> str | None:
    """Commit and push .sops.yaml naming ``recipient``; None when it already names it.

    A .sops.yaml that names other keys is the learner's: refused, never overwritten.
    """
    git = Git(repo)
    publish.check_clean(git)
    publish.catch_up(git)
    if (repo / SOPS_CONFIG).exists():
        named, _ = lab_recipients(repo)
        if recipient in named:
            return None
        raise UsageError(
            f"{repo / SOPS_CONFIG} exists and does not name the lab's age key {recipient}",
            fix=f"add {recipient} to the age recipients of its creation_rules yourself, commit and push",
        )
    with publish.published_or_undone(git, f"the commit of {SOPS_CONFIG}"):
        (repo / SOPS_CONFIG).write_text(sops_config_text(recipient), encoding="utf-8")
        sha = publish.commit(git, [SOPS_CONFIG], "Encrypt Secrets for the lab's age key (SOPS)\n")
        publish.push(git)
    return sha


def lab_recipient(env_name: str) -> str | None:
    """The public recipient of the lab's age key (`secrets init` made it), or None when there is none yet."""
    try:
        found = _RECIPIENT.search(key_path(env_name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return found.group(1) if found else None


def init_git_side(env_name: str, repo: Path, deadline: Deadline) -> tuple[SecretsSetup, str]:
    """The key pair and the pushed .sops.yaml: all of `secrets init` a repository without a cluster needs.

    Returns the setup and the private identity (for the cluster's half, on an engine that decrypts).
    """
    identity, recipient, created = load_or_create_key(env_name, deadline)
    commit = write_sops_config(repo, recipient)
    return SecretsSetup(recipient, key_path(env_name), created, commit), identity


def init_secrets(lab: LabEnvironment, deadline: Deadline) -> SecretsSetup:
    setup, identity = init_git_side(lab.state.name, lab.repo, deadline)
    engine = lab.engine
    if not engine.decryption:
        setup.engine_note = (
            f"{engine.display_name} cannot decrypt SOPS files in the cluster; the policy gate still refuses a "
            "plaintext Secret"
        )
        return setup
    if lab.state.tenant:
        raise UsageError(
            f"a class's learners share {engine.namespace}, so one age key there would decrypt every learner's files",
            fix="keep Secrets out of a class's lab repositories for now (docs/secrets.md)",
        )
    key_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SOPS_KEY_SECRET, "namespace": engine.namespace},
        "type": "Opaque",
        "stringData": {KEY_DATA: identity},
    }
    setup.changed = engine.applier.apply_changed([key_secret])
    setup.changed += engine.enable_decryption(list(ENVIRONMENTS), SOPS_KEY_SECRET)
    setup.engine_note = engine.decryption
    return setup

"""Where an environment lives, kept between commands so later ones need no flags.

Each lab environment has a folder under the user's state directory::

    $GITOPS_LAB_STATE_DIR            (default: $XDG_STATE_HOME/gitops-lab,
                                      or ~/.local/state/gitops-lab)
      <name>/state.json              this module's record
      <name>/...                     credentials, progress, backups (other modules)

Writes are atomic (temp file + rename), so Ctrl-C never leaves half a file.
The name is a DNS-1123 label (it also names the kind cluster), so an
environment's folder is always one plain folder inside the state directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_lab import DEFAULT_NAME
from gitops_lab.errors import NotFound, UsageError
from gitops_lab.textfiles import load_json_object

_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
NAME_MAX = 63


def check_name(name: str) -> str:
    """``name`` when it is a DNS-1123 label (it names the kind cluster and the state folder)."""
    if len(name) <= NAME_MAX and _NAME_RE.fullmatch(name):
        return name
    problem = (
        "is empty"
        if not name
        else f"is longer than {NAME_MAX} characters"
        if len(name) > NAME_MAX
        else ("is not a DNS-1123 label")
    )
    raise UsageError(
        f"the environment name {name!r} {problem}",
        fix="use lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. --name class-a",
    )


def state_root() -> Path:
    explicit = os.environ.get("GITOPS_LAB_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "gitops-lab"


def environment_dir(name: str = DEFAULT_NAME) -> Path:
    """The environment's own folder; never anything outside the state directory.

    A class keeps its learners' environments inside its own folder
    (``<class>/class/learners/<learner>``): every part must be a DNS-1123 label,
    so no name can climb out of the state directory.
    """
    parts = name.split("/") if name else [name]
    if len(parts) > 4:
        check_name(name)
    return state_root().joinpath(*(check_name(part) for part in parts))


@dataclass
class EnvironmentState:
    """What later commands need to find an environment again."""

    name: str = DEFAULT_NAME
    repo_path: str | None = None
    remote_url: str | None = None
    provider: str | None = None
    engine: str | None = None
    engine_install: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    # Where the engines fetch from, when it differs from remote_url (an in-cluster URL).
    engine_repo_url: str | None = None
    # A classroom learner on a shared cluster: the engine objects are named after them
    # (see adapters/engines/tenancy.py); None for a lab of one's own.
    tenant: str | None = None
    # The lab repository's forge (Gitea) and the 0600 accounts file it was seeded with
    # (`repo init --forge-url --forge-credentials`): prod is then promoted by pull request.
    forge_url: str | None = None
    forge_credentials: str | None = None

    @property
    def path(self) -> Path:
        return environment_dir(self.name) / "state.json"

    def save(self) -> Path:
        write_private_json(self.path, dataclasses.asdict(self), mode=0o644)
        return self.path


def load_state(name: str = DEFAULT_NAME) -> EnvironmentState:
    """The saved state of ``name``; NotFound when nothing was set up yet."""
    path = environment_dir(name) / "state.json"
    fix = f"delete it (`rm {path}`), then run `gitops-lab up` or `gitops-lab repo init PATH` again"
    try:
        data = load_json_object(path, "state file", fix)
    except FileNotFoundError:
        raise NotFound(
            f"no gitops-lab environment named {name!r} is set up (no {path})",
            fix="run `gitops-lab up` or `gitops-lab repo init PATH` first",
        ) from None
    known = {f.name for f in dataclasses.fields(EnvironmentState)}
    values = {k: v for k, v in data.items() if k in known}
    wrong = sorted(k for k, v in values.items() if v is not None and not isinstance(v, str))
    if wrong:
        raise UsageError(
            f"the state file {path} has {', '.join(wrong)} that {'is' if len(wrong) == 1 else 'are'} not text", fix=fix
        )
    return EnvironmentState(**values)


def load_state_or_none(name: str = DEFAULT_NAME) -> EnvironmentState | None:
    """The saved state, or None when nothing was set up; a damaged file is an error."""
    try:
        return load_state(name)
    except NotFound:
        return None


def write_private_json(path: Path, data: Any, mode: int = 0o600) -> None:
    """Atomically write ``data`` as JSON with the given permissions."""
    write_private_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode)


def write_private_text(path: Path, text: str, mode: int = 0o600) -> None:
    """Atomically write ``text`` with the given permissions (set before any byte is written)."""
    try:
        _write_atomically(path, text, mode)
    except OSError as exc:
        raise UsageError(
            f"cannot write {path}: {exc.strerror or exc}",
            fix=f"make {path.parent} writable, or point $GITOPS_LAB_STATE_DIR at a folder you can write",
        ) from exc


def _write_atomically(path: Path, text: str, mode: int) -> None:
    import tempfile  # here, not at the top: every command (and --help) reads state, few write it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

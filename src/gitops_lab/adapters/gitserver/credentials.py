"""The Git users' credentials store: passwords generated once, kept in the state folder (0600), read back.

`up` keeps an environment's two users here (``writer`` for the learner and the CLI,
``reader`` for the engines); a class keeps its users in the same shape
(classroom/record.py), and a learner's kit hands over the file a learner's
environment reads (classroom/kits.py). The forge's accounts take their passwords
from ``new_password`` too.

Apart from incluster.py (its manifests, YAML and the Kubernetes client), because every command
looks here for the credentials of its Git calls (cli/app.py), and a command that only reads Git
should not load the cluster code to do it.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gitops_lab.adapters.repo.git import GitAuth as Credentials  # one credentials record: the one Git takes
from gitops_lab.errors import UsageError
from gitops_lab.state import environment_dir, write_private_json
from gitops_lab.textfiles import load_json_object

CREDENTIALS_FILE = "gitserver-credentials.json"


@dataclass(frozen=True)
class GitServerCredentials:
    writer: Credentials
    reader: Credentials

    def to_dict(self) -> dict[str, Any]:
        return {"writer": asdict(self.writer), "reader": asdict(self.reader)}


def new_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


def credentials_path(env_name: str) -> Path:
    return environment_dir(env_name) / CREDENTIALS_FILE


def saved_credentials(env_name: str) -> GitServerCredentials | None:
    """The environment's credentials as `up` saved them; None when there are none.

    A damaged file is a UsageError naming it: pushing without credentials would
    only fail later with the server's 401.
    """
    path = credentials_path(env_name)
    try:
        data = load_json_object(path, "Git credentials file", fix=CREDENTIALS_FIX)
    except FileNotFoundError:
        return None
    return GitServerCredentials(
        credentials_in(data, "writer", path, CREDENTIALS_FIX), credentials_in(data, "reader", path, CREDENTIALS_FIX)
    )


def load_or_create_credentials(env_name: str) -> GitServerCredentials:
    """The environment's credentials, generated on first use and kept (0600) so re-runs reuse them.

    Only a missing file is a first use: a damaged one is an error, never a reason
    to mint passwords the Git server and the engines do not know.
    """
    saved = saved_credentials(env_name)
    if saved is not None:
        return saved
    creds = GitServerCredentials(Credentials("learner", new_password()), Credentials("engine", new_password()))
    save_credentials(env_name, creds)
    return creds


def save_credentials(env_name: str, creds: GitServerCredentials) -> None:
    """Keep ``creds`` (0600) as the environment's Git credentials; a no-op when they are already kept."""
    if saved_credentials(env_name) != creds:
        write_private_json(credentials_path(env_name), creds.to_dict(), mode=0o600)


CREDENTIALS_FIX = (
    "restore it from your backup; or delete it and run `gitops-lab up` again, which makes new passwords "
    "and gives them to the Git server and the engine"
)


def credentials_in(data: dict[str, Any], key: str, path: Path, fix: str) -> Credentials:
    """``data[key]`` as a username and password, or UsageError naming the file and the key."""
    found = data.get(key)
    if (
        not isinstance(found, dict)
        or not isinstance(found.get("username"), str)
        or not isinstance(found.get("password"), str)
        or not found["username"]
        or not found["password"]
    ):
        raise UsageError(f"the Git credentials file {path} has no username and password for {key}", fix=fix)
    return Credentials(found["username"], found["password"])

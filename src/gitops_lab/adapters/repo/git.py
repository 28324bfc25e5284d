"""A thin runner for the git command line, with errors that carry git's words."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

from gitops_lab.errors import GitError, PreflightError

# Git must never stop to ask for a password or an editor: a CLI that hangs on a
# hidden prompt is worse than one that fails with a message.
_NON_INTERACTIVE = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "true",
    "GIT_MERGE_AUTOEDIT": "no",
    "GCM_INTERACTIVE": "never",
}


def git_executable() -> str:
    found = shutil.which("git")
    if not found:
        raise PreflightError(
            "git is not installed",
            fix="install git (Debian/Ubuntu: `sudo apt-get install git`, macOS: `xcode-select --install`)",
        )
    return found


USERNAME_VAR = "GITOPS_LAB_GIT_USERNAME"
PASSWORD_VAR = "GITOPS_LAB_GIT_PASSWORD"


def auth_env(environ: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    """Basic-auth for http(s) remotes from $GITOPS_LAB_GIT_USERNAME/PASSWORD.

    Passed to git as an extra header through GIT_CONFIG_* variables, so the
    secret is never written to .git/config, a URL, or a log line.
    """
    user, password = environ.get(USERNAME_VAR), environ.get(PASSWORD_VAR)
    if not (user and password):
        return {}
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}",
    }


class Git:
    """Runs git in one working copy."""

    def __init__(self, path: str | Path, env: dict[str, str] | None = None):
        self.path = Path(path)
        self.env = {**os.environ, **_NON_INTERACTIVE, **auth_env(), **(env or {})}

    def run(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        cmd = [git_executable(), "-C", str(self.path), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, input=input)
        if check and proc.returncode != 0:
            raise GitError(f"`git {' '.join(args)}` failed: {_first_line(proc.stderr or proc.stdout)}")
        return proc

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def ok(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0

    # -- queries -----------------------------------------------------------
    def is_repo(self) -> bool:
        return self.path.is_dir() and self.ok("rev-parse", "--is-inside-work-tree")

    def head(self) -> str:
        return self.out("rev-parse", "HEAD")

    def branch(self) -> str:
        return self.out("rev-parse", "--abbrev-ref", "HEAD")

    def dirty_files(self) -> list[str]:
        """Paths with uncommitted changes, untracked files included."""
        lines = self.run("status", "--porcelain=v1", "--untracked-files=all").stdout.splitlines()
        return [line[3:] for line in lines if line.strip()]

    def remote_url(self, remote: str = "origin") -> str | None:
        proc = self.run("remote", "get-url", remote, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def in_progress_operation(self) -> str | None:
        """The name of a rebase, merge, revert or cherry-pick left half-done."""
        git_dir = Path(self.out("rev-parse", "--absolute-git-dir"))
        markers = {
            "rebase-merge": "rebase",
            "rebase-apply": "rebase",
            "MERGE_HEAD": "merge",
            "REVERT_HEAD": "revert",
            "CHERRY_PICK_HEAD": "cherry-pick",
        }
        for marker, name in markers.items():
            if (git_dir / marker).exists():
                return name
        return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("hint:"):
            return line.removeprefix("fatal: ").removeprefix("error: ")
    return "no output"

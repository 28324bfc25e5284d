"""A thin runner for the git command line, with errors that carry git's words.

Every call that talks to a remote (fetch, push, ls-remote, clone) is bounded
by the running command's deadline (``deadline.command_deadline``, else
DEFAULT_NETWORK_SECONDS): git's own low-speed limit stops a remote that
accepts and never answers, and the process group is ended at the deadline.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.repo.layout import BRANCH as LAB_BRANCH
from gitops_lab.errors import GitError, PreflightError, WaitTimeout
from gitops_lab.deadline import Deadline, current_deadline
from gitops_lab.processes import run_bounded

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


NETWORK_COMMANDS = frozenset({"fetch", "push", "ls-remote", "clone", "pull"})
#: The bound of a network call when the command set no deadline of its own.
DEFAULT_NETWORK_SECONDS = 300.0
#: A transfer slower than 1 byte/s for this long (or the time left, if less) is given up.
LOW_SPEED_SECONDS = 30
_LOW_SPEED_ABORT = "Operation too slow"  # curl's words when http.lowSpeedTime passed without data

USERNAME_VAR = "GITOPS_LAB_GIT_USERNAME"
PASSWORD_VAR = "GITOPS_LAB_GIT_PASSWORD"


@dataclass(frozen=True)
class GitAuth:
    """Basic-auth credentials for the http(s) remotes of one command."""

    username: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"GitAuth(username={self.username!r}, password=***)"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> GitAuth | None:
        """$GITOPS_LAB_GIT_USERNAME and $GITOPS_LAB_GIT_PASSWORD, when both are set."""
        user, password = environ.get(USERNAME_VAR), environ.get(PASSWORD_VAR)
        return cls(user, password) if user and password else None


_command_auth: ContextVar[GitAuth | None] = ContextVar("gitops_lab_git_auth", default=None)


@contextlib.contextmanager
def authenticated(auth: GitAuth | None) -> Iterator[GitAuth | None]:
    """Every git call inside the block authenticates as ``auth`` (None: as nobody).

    The record lives in a context variable for the block only: it never enters
    the process environment, so nothing outlives the command that set it.
    """
    token = _command_auth.set(auth)
    try:
        yield auth
    finally:
        _command_auth.reset(token)


def current_auth() -> GitAuth | None:
    """The credentials of the running command's git calls, if any."""
    return _command_auth.get()


def auth_env(auth: GitAuth | None) -> dict[str, str]:
    """Basic-auth for http(s) remotes as an extra header.

    Passed to git through GIT_CONFIG_* variables, so the secret is never
    written to .git/config, a URL, or a log line.
    """
    if auth is None:
        return {}
    token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}",
    }


class Git:
    """Runs git in one working copy."""

    def __init__(self, path: str | Path, env: dict[str, str] | None = None):
        self.path = Path(path)
        base = {k: v for k, v in os.environ.items() if k not in (USERNAME_VAR, PASSWORD_VAR)}
        self.env = {**base, **_NON_INTERACTIVE, **(env or {})}

    def run(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        cmd = [git_executable(), "-C", str(self.path)]
        timeout = None
        if args and args[0] in NETWORK_COMMANDS:
            deadline = current_deadline() or Deadline(DEFAULT_NETWORK_SECONDS)
            timeout = deadline.remaining()
            if timeout <= 0:
                raise _network_timeout(args, deadline)
            low_speed = max(1, min(int(timeout), LOW_SPEED_SECONDS))
            cmd += ["-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={low_speed}"]
        try:
            proc = run_bounded(
                [*cmd, *args], env={**self.env, **auth_env(current_auth())}, input=input, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise _network_timeout(args, deadline) from exc
        if timeout is not None and proc.returncode != 0 and _LOW_SPEED_ABORT in proc.stderr:
            raise _network_timeout(args, deadline)
        if check and proc.returncode != 0:
            raise GitError(f"`git {' '.join(args)}` failed: {_first_line(proc.stderr or proc.stdout)}")
        return proc

    def run_binary(self, *args: str) -> subprocess.CompletedProcess:
        """A local git call whose stdout is bytes as git wrote them (a blob: no decoding, CRLF kept); never raises."""
        return run_bounded([git_executable(), "-C", str(self.path), *args], env=self.env, binary=True)

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

    def porcelain_status(self) -> list[str]:
        """`git status --porcelain` lines ("XY path"), untracked files included."""
        lines = self.run("status", "--porcelain=v1", "--untracked-files=all").stdout.splitlines()
        return [line for line in lines if line.strip()]

    def dirty_files(self) -> list[str]:
        """Paths with uncommitted changes, untracked files included."""
        return [line[3:] for line in self.porcelain_status()]

    def remotes(self) -> list[str]:
        return self.run("remote", check=False).stdout.split()

    def lab_remote(self) -> str | None:
        """The remote the lab publishes to and reads from, named in this one place: the one the lab's
        branch follows (`branch.main.remote`: writes run on main only), else `origin`. None without
        either: no remote at all, or remotes main does not follow (writes refuse those, naming them)."""
        remotes = self.remotes()
        upstream = self.run("config", "--get", f"branch.{LAB_BRANCH}.remote", check=False).stdout.strip()
        if upstream in remotes:
            return upstream
        return "origin" if "origin" in remotes else None

    def remote_url(self, remote: str | None = None) -> str | None:
        """The URL of ``remote``, by default of the lab's remote (``lab_remote``); None when there is none."""
        remote = remote or self.lab_remote()
        if remote is None:
            return None
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


def _network_timeout(args: tuple[str, ...], deadline: Deadline) -> WaitTimeout:
    shown = " ".join(a for a in args if not a.startswith("--"))
    return WaitTimeout(
        f"`git {shown}` got no answer from the remote within the command's {deadline.describe()} deadline",
        fix="check that the remote answers (`git ls-remote URL`), then re-run with a larger --timeout if it is slow",
    )


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("hint:"):
            return line.removeprefix("fatal: ").removeprefix("error: ")
    return "no output"

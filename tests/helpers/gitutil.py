"""Small Git helpers for tests that check what a real repository holds."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def identity_env(name: str = "t", email: str = "t@e", **extra: str) -> dict[str, str]:
    """This process's environment for git as ``name <email>``, never prompting for credentials."""
    return dict(
        os.environ,
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=email,
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=email,
        GIT_TERMINAL_PROMPT="0",
        **extra,
    )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout.strip()


def remote_version(remote: Path, env: str) -> str:
    """The model version ``env`` runs on the remote's main branch."""
    text = git(remote, "show", f"main:overlays/{env}/kustomization.yaml")
    [line] = [found for found in text.splitlines() if "gitops-lab.io/model-version:" in found]
    return line.split(":", 1)[1].strip()


def last_trailers(repo: Path, rev: str = "main") -> list[str]:
    """The trailer lines (``Key: value``) of rev's commit, in order."""
    return git(repo, "log", "-1", "--format=%(trailers:only,unfold)", rev).splitlines()

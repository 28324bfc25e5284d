"""Small Git helpers for tests that check what a real repository holds."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from gitops_lab.adapters.forge.gitea import GiteaAPI


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


def remote_head(url: str) -> str:
    """The commit the remote's main branch points at."""
    out = subprocess.run(["git", "ls-remote", url, "refs/heads/main"], check=True, capture_output=True, text=True)
    return out.stdout.split()[0]


def remote_version(remote: Path, env: str) -> str:
    """The model version ``env`` runs on the remote's main branch."""
    return overlay_version(git(remote, "show", f"main:overlays/{env}/kustomization.yaml"))


def forge_version(api: GiteaAPI, owner: str, repo: str, env: str, ref: str = "main") -> str:
    """The model version ``env`` runs at ``ref`` of OWNER/REPO on a forge, read through its contents API."""
    data = api.call("GET", f"/repos/{owner}/{repo}/contents/overlays/{env}/kustomization.yaml?ref={ref}")
    return overlay_version(base64.b64decode(data["content"]).decode())


def overlay_version(text: str) -> str:
    """The version on an overlay's one model-version line, read here rather than by the code under test."""
    [line] = [found for found in text.splitlines() if "gitops-lab.io/model-version:" in found]
    return line.split(":", 1)[1].strip().strip("\"'")


def last_trailers(repo: Path, rev: str = "main") -> list[str]:
    """The trailer lines (``Key: value``) of rev's commit, in order."""
    return git(repo, "log", "-1", "--format=%(trailers:only,unfold)", rev).splitlines()


def run_git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """git ARGS in ``cwd`` as ``t <t@e>``, with no system config and HOME there: the finished process, or
    AssertionError naming the command and its stderr when ``check`` and it failed."""
    env = identity_env(GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd or "/tmp"))
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done


def make_commit(work: Path, name: str, content: bytes | str) -> None:
    path = work / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    run_git("add", name, cwd=work)
    run_git("commit", "-q", "-m", f"add {name}", cwd=work)


def commit_and_push(work: Path, url: str, message: str) -> str:
    """Commit everything in ``work`` as ``message`` and push it to ``url``'s main (a learner's plain push,
    credentials in the URL); the pushed commit."""
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    done = subprocess.run(
        ["git", "-C", str(work), "push", "-q", url, "HEAD:refs/heads/main"],
        capture_output=True,
        text=True,
        env=identity_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return git(work, "rev-parse", "HEAD")

"""Commit a change and publish it, safely, on the main branch.

The rules every change follows:
- start only from a clean working copy on ``main`` with no operation half-done;
- catch up with the remote first (fast-forward only);
- one commit per change;
- if the push is rejected because the remote moved, fetch, rebase the local
  commits onto it and retry, a bounded number of times; before any rebase the
  local branch is saved under ``refs/gitops-lab/backup/`` so nothing is lost;
- published history is never rewritten: no force push, ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.seed import BRANCH
from gitops_lab.errors import GitError, RepoStateError

PUSH_ATTEMPTS = 4
BACKUP_PREFIX = "refs/gitops-lab/backup"


def check_clean(git: Git) -> None:
    """Refuse to start a change in a working copy that is not ready for one."""
    if not git.is_repo():
        raise RepoStateError(
            f"{git.path} is not a Git working copy",
            fix="run `gitops-lab repo init PATH` or pass --repo",
        )
    operation = git.in_progress_operation()
    if operation:
        raise RepoStateError(
            f"a {operation} is in progress in {git.path}",
            fix=f"finish it or run `git {operation} --abort` first",
        )
    branch = git.branch()
    if branch != BRANCH:
        raise RepoStateError(
            f"{git.path} is on {branch!r}, but environments are promoted from {BRANCH!r}",
            fix=f"run `git switch {BRANCH}` first",
        )
    dirty = git.dirty_files()
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise RepoStateError(
            f"the working copy has uncommitted changes: {shown}",
            fix="commit or stash them first",
        )


def catch_up(git: Git) -> None:
    """Fast-forward to the remote when it is ahead; leave diverged history to the push."""
    if not git.remote_url():
        return
    git.run("fetch", "--quiet", "origin", BRANCH)
    remote = f"origin/{BRANCH}"
    if git.ok("merge-base", "--is-ancestor", "HEAD", remote):
        git.run("merge", "--quiet", "--ff-only", remote)


def backup_ref(git: Git, reason: str) -> str:
    """Save the current HEAD under refs/gitops-lab/backup/<time>-<reason>."""
    ref = f"{BACKUP_PREFIX}/{time.strftime('%Y%m%dT%H%M%S')}-{time.monotonic_ns() % 100000:05d}-{reason}"
    git.run("update-ref", ref, "HEAD")
    return ref


def snapshot_uncommitted(git: Git, reason: str) -> str | None:
    """Keep uncommitted changes (untracked files too) as a commit under a backup ref.

    The working tree and the index are left as they are. Returns the ref, or
    None when there is nothing uncommitted.
    """
    if not git.dirty_files():
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        side = Git(git.path, env={"GIT_INDEX_FILE": str(Path(tmp) / "index")})
        side.run("read-tree", "HEAD")
        side.run("add", "--all")
        tree = side.out("write-tree")
        snapshot = side.out("commit-tree", tree, "-p", "HEAD", "-m", f"Uncommitted work saved by gitops-lab ({reason})")
    ref = backup_ref(git, reason)
    git.run("update-ref", ref, snapshot)
    return ref


def commit(git: Git, paths: list[str], message: str, allow_empty: bool = False) -> str:
    """Commit ``paths``; with ``allow_empty`` (and no paths) a commit that records only its message."""
    if paths:
        git.run("add", "--", *paths)
    git.run("commit", "--quiet", *(["--allow-empty"] if allow_empty else []), "--file", "-", input=message)
    return git.head()


def push(git: Git, on_retry: Callable[[int, str], None] | None = None) -> bool:
    """Push main; rebase and retry when the remote moved. False when there is no remote."""
    if not git.remote_url():
        return False
    last = ""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        proc = git.run("push", "--porcelain", "origin", f"HEAD:refs/heads/{BRANCH}", check=False)
        if proc.returncode == 0:
            return True
        last = (proc.stderr + proc.stdout).strip()
        if not _rejected_because_remote_moved(last):
            raise GitError(f"push to {git.remote_url()} failed: {_summary(last)}")
        if on_retry:
            on_retry(attempt, "the remote moved; rebasing onto it")
        saved = backup_ref(git, "before-rebase")
        git.run("fetch", "--quiet", "origin", BRANCH)
        rebase = git.run("rebase", "--quiet", f"origin/{BRANCH}", check=False)
        if rebase.returncode != 0:
            git.run("rebase", "--abort", check=False)
            raise GitError(
                "the remote changed the same lines concurrently, so the change could not be rebased; "
                f"your commits are kept on {saved}",
                fix="run `git pull --rebase`, resolve the conflict, then `git push`",
            )
    raise GitError(f"push kept being rejected after {PUSH_ATTEMPTS} attempts: {_summary(last)}")


def _rejected_because_remote_moved(text: str) -> bool:
    markers = ("[rejected]", "non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref")
    return any(marker in text for marker in markers)


def _summary(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("hint:")]
    return "; ".join(lines[-2:]) if lines else "no output"

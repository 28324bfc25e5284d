"""What was pushed: the remote's branch, as the engines see it.

Every read of "what Git says" that a wait or a check compares the cluster
with goes through here: fetch the remote's branch (``origin/main``; ``HEAD``
without a remote), optionally fast-forward a clean working copy to it, and
read an overlay's model version at a commit.
"""

from __future__ import annotations

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import overlay_path, version_in_text
from gitops_lab.adapters.repo.publish import remote_branch
from gitops_lab.adapters.repo.seed import BRANCH
from gitops_lab.adapters.repo.snapshot import RepoSnapshot
from gitops_lab.errors import NotFound


def pushed_ref(git: Git) -> str:
    """The ref of what was pushed, as last fetched: ``origin/main`` (or the remote main follows), or ``HEAD``
    without a remote."""
    return remote_branch(git) if git.remote_url() else "HEAD"


def fetch_pushed(git: Git, tags: bool = False) -> str:
    """Fetch the remote's branch (and its tags with ``tags``); the ref of what was pushed (``pushed_ref``)."""
    ref = pushed_ref(git)
    if ref != "HEAD":
        remote = ref.removesuffix(f"/{BRANCH}")
        git.run("fetch", "--quiet", *(["--tags", "--force"] if tags else []), remote, BRANCH)
    return ref


def follow_pushed(git: Git, tags: bool = False) -> str:
    """Fetch what was pushed and fast-forward the working copy to it; the ref of what was pushed.

    Only a clean working copy that is behind moves, so file reads see pushes made
    elsewhere; uncommitted changes and local commits stay as they are.
    """
    ref = fetch_pushed(git, tags)
    if ref != "HEAD" and not git.dirty_files() and git.ok("merge-base", "--is-ancestor", "HEAD", ref):
        git.run("merge", "--quiet", "--ff-only", ref, check=False)
    return ref


def version_at(git: Git, ref: str, env: str) -> str:
    """The model version ``env``'s overlay names at ``ref`` (a commit, tag or branch).

    DamagedFile naming the overlay when it names none there; a ref that is no
    commit (``<first commit>^``) names none either.
    """
    try:
        snapshot = RepoSnapshot(git, ref)
    except NotFound:
        return version_in_text("", overlay_path(env))
    return snapshot.model_version(env)

"""What was pushed: the remote's branch, as the engines see it.

Every read of "what Git says" that a wait or a check compares the cluster
with goes through here: fetch the remote's branch (``origin/main``; ``HEAD``
without a remote), optionally fast-forward a clean working copy to it, and
read an overlay's model version at a commit. The other fetches live here too:
a side branch (``fetch_branch``), a tag (``fetch_tag``) and everything the
remote has (``fetch_everything``). A write's own fetches (catching up before
it, rebasing when the remote moved) are ``publish.py``'s.
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


def fetch_branch(git: Git, branch: str) -> str | None:
    """Fetch the remote's ``branch`` (a side branch: a promotion's pull request branch) to its
    remote-tracking ref, which follows the remote as such refs do; that ref, or None when the fetch
    failed (no such branch there)."""
    remote = git.lab_remote() or "origin"
    tracking = f"refs/remotes/{remote}/{branch}"
    fetched = git.run("fetch", "--quiet", remote, f"+refs/heads/{branch}:{tracking}", check=False)
    return tracking if fetched.returncode == 0 else None


def fetch_tag(git: Git, tag: str) -> None:
    """Fetch ``tag`` from the lab's remote when there is one (the remote's copy replaces the local one);
    a failed fetch (the remote has no such tag) leaves the local tags as they are."""
    if git.remote_url():
        git.run("fetch", "--quiet", git.lab_remote() or "origin", f"+refs/tags/{tag}:refs/tags/{tag}", check=False)


def fetch_everything(git: Git) -> None:
    """Fetch every branch and tag the lab's remote has (its tags replace local ones), e.g. so that a bundle
    of the working copy holds what was pushed; a failed fetch leaves what the last one got."""
    remote = git.lab_remote()
    if remote:
        git.run("fetch", "--quiet", "--tags", "--force", remote, check=False)


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

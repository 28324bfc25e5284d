"""Seed the platform repository (the senior engineer's pipeline assets) beside the lab repository.

ml-platform-pipelines holds the reusable GitHub workflow, the GitLab CI/CD
component and the runner configuration both read; it is published with the
release tag v1.0.0, which the learner's callers pin.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import BRANCH
from gitops_lab.adapters.repo.publish import push_refs
from gitops_lab.adapters.repo.seed import absolute_remote, remote_has_branch
from gitops_lab.errors import GitError
from gitops_lab.resources import platform_template

PLATFORM_REPOSITORY = "ml-platform-pipelines"
FIRST_RELEASE = "v1.0.0"
# The platform team's identity: the learner's callers consume what this team released.
PLATFORM_AUTHOR = {"user.name": "ML Platform Team", "user.email": "ml-platform@gitops-lab.local"}
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


def seed_platform(remote: str) -> str:
    """Publish the platform repository to ``remote`` (an existing, empty repository) with tag v1.0.0.

    Returns "seeded", or "reused" when ``remote`` already has it; nothing of an
    existing repository is changed.
    """
    remote = absolute_remote(remote)
    if remote_has_branch(remote):
        return "reused"
    with tempfile.TemporaryDirectory(prefix="gitops-lab-platform-") as tmp:
        work = Path(tmp) / PLATFORM_REPOSITORY
        shutil.copytree(platform_template(), work, ignore=_SKIP)
        git = Git(work)
        git.run("init", "--quiet", "--initial-branch", BRANCH)
        for key, value in PLATFORM_AUTHOR.items():
            git.run("config", "--local", key, value)
        git.run("add", "--all")
        git.run("commit", "--quiet", "--message", "ML platform pipelines: reusable workflow, component, runners")
        git.run("tag", "--annotate", FIRST_RELEASE, "--message", f"Release {FIRST_RELEASE}")
        proc = push_refs(git, remote, [BRANCH, f"refs/tags/{FIRST_RELEASE}"])
        if proc.returncode != 0:
            raise GitError(
                f"the platform repository could not be published to {remote}: {proc.stderr.strip() or proc.stdout}",
                fix="check the remote exists and is empty (`git init --bare`), then run the command again",
            )
    return "seeded"


def remote_exists(remote: str) -> bool:
    """Whether a repository answers at ``remote`` (empty or not)."""
    return Git(".").run("ls-remote", "--heads", absolute_remote(remote), check=False).returncode == 0


def platform_repository(tenant: str | None = None) -> str:
    """The platform repository's name: ml-platform-pipelines, or a class learner's own copy of it,
    ``<learner>-ml-platform-pipelines`` (a class's server holds one per learner, beside ``<learner>.git``)."""
    return f"{tenant}-{PLATFORM_REPOSITORY}" if tenant else PLATFORM_REPOSITORY


def platform_remote_beside(lab_remote: str, tenant: str | None = None) -> str:
    """Where the platform repository sits beside the lab repository: same server or folder, its own name.

    ``tenant``: the lab repository is a class learner's (their lab environment's state says so), whose
    platform repository is their own (``platform_repository``)."""
    head, _, _ = lab_remote.rstrip("/").rpartition("/")
    return f"{head}/{platform_repository(tenant)}.git"


def remote_refs(remote: str) -> tuple[set[str], set[str]]:
    """(tags, branches) of ``remote``; GitError when it cannot be read."""
    proc = Git(".").run("ls-remote", "--tags", "--heads", absolute_remote(remote), check=False)
    if proc.returncode != 0:
        raise GitError(
            f"cannot read the platform repository {remote}: {proc.stderr.strip() or 'no output'}",
            fix="seed it beside the lab repository: `gitops-lab repo init PATH --remote LAB --platform-remote "
            f"{remote}` (an empty `git init --bare` first), or run `gitops-lab up`; in a class, the "
            "instructor's `gitops-lab class create` (run again) seeds each learner's",
        )
    tags, branches = set(), set()
    for line in proc.stdout.splitlines():
        ref = line.split("\t", 1)[-1]
        if ref.startswith("refs/tags/"):
            tags.add(ref.removeprefix("refs/tags/").removesuffix("^{}"))
        elif ref.startswith("refs/heads/"):
            branches.add(ref.removeprefix("refs/heads/"))
    return tags, branches

"""Create the lab's Git repository from the template, or find the one that exists."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import BRANCH, ENVIRONMENTS, RepoLayout
from gitops_lab.errors import GitError, GitOpsLabError, NotFound, RepoStateError
from gitops_lab.resources import environments_template

SEED_TAG = "gitops-lab/seed"
_SKIP = shutil.ignore_patterns(".keep", "__pycache__", "*.pyc", ".pytest_cache")
# Used only where the learner has no git identity configured, so commits work.
_FALLBACK_IDENTITY = {"user.name": "gitops-lab learner", "user.email": "learner@gitops-lab.local"}


@dataclass
class SeedResult:
    path: Path
    action: str  # "seeded", "cloned" or "reused"
    commit: str
    remote: str | None

    @property
    def changed(self) -> bool:
        return self.action != "reused"


def remote_has_branch(url: str, branch: str = BRANCH) -> bool:
    """Whether ``url`` has ``branch``; NotFound, saying how to create it, when there is no repository there."""
    proc = Git(".").run("ls-remote", "--heads", url, branch, check=False)
    if proc.returncode != 0:
        said = next(
            (line.removeprefix("fatal: ") for line in proc.stderr.splitlines() if line.startswith("fatal:")),
            proc.stderr.strip() or "no output",
        )
        if is_local_path(url):
            raise NotFound(
                f"the remote {url} is not a Git repository ({said})",
                fix=f"create an empty one first: `git init --bare {url}`",
            )
        raise NotFound(
            f"cannot read the remote {url} ({said})",
            fix="check the URL and the credentials ($GITOPS_LAB_GIT_USERNAME, $GITOPS_LAB_GIT_PASSWORD); "
            "the repository must exist, empty is fine",
        )
    return bool(proc.stdout.strip())


def is_local_path(url: str) -> bool:
    """A remote given as a path on this machine, not a URL (scheme://) or scp-like host:path."""
    if "://" in url:
        return False
    head, colon, _ = url.partition(":")
    return not colon or "/" in head


def absolute_remote(url: str) -> str:
    """A local-path remote as an absolute path (git would read a relative one from the working copy)."""
    return str(Path(url).expanduser().resolve()) if is_local_path(url) else url


def init_working_copy(path: str | Path, remote: str | None = None, template: Path | None = None) -> SeedResult:
    """Make ``path`` a working copy of the lab repository.

    - already a seeded working copy: reused, nothing changes;
    - ``remote`` already holds the lab repository: cloned;
    - otherwise: seeded from the template with one commit and the seed tag,
      then pushed to ``remote`` when one is given.
    """
    path = Path(path).expanduser().resolve()
    remote = absolute_remote(remote) if remote else None
    git = Git(path)
    if git.is_repo() and git.ok("rev-parse", "--verify", "--quiet", f"refs/tags/{SEED_TAG}"):
        current = git.remote_url()
        if remote and current and current != remote:
            raise RepoStateError(
                f"{path} is already a lab working copy whose origin is {current}, not {remote}",
                fix="choose another PATH, or run without --remote to keep the existing origin",
            )
        if current and not remote_has_branch(current):
            # An earlier run seeded this copy but was stopped before the remote had it.
            _publish_seed(git, current, path)
            return SeedResult(path, "seeded", git.head(), current)
        return SeedResult(path, "reused", git.head(), current)

    if path.exists() and any(path.iterdir()):
        raise RepoStateError(
            f"{path} exists and is not empty",
            fix="choose a new or empty folder for the working copy",
        )

    if remote and remote_has_branch(remote):
        path.parent.mkdir(parents=True, exist_ok=True)
        # --branch: a bare remote's HEAD may name another branch (`git init --bare` says master).
        Git(path.parent).run("clone", "--quiet", "--origin", "origin", "--branch", BRANCH, remote, str(path))
        _ensure_identity(git)
        if not git.ok("rev-parse", "--verify", "--quiet", f"refs/tags/{SEED_TAG}"):
            raise RepoStateError(
                f"{remote} holds a repository that gitops-lab did not seed (no {SEED_TAG} tag)",
                fix="use an empty remote repository",
            )
        return SeedResult(path, "cloned", git.head(), remote)

    shutil.copytree(template or environments_template(), path, ignore=_SKIP, dirs_exist_ok=True)
    git.run("init", "--quiet", "--initial-branch", BRANCH)
    _ensure_identity(git)
    layout = RepoLayout(path)
    seed_versions = ", ".join(f"{env}={layout.model_version(env)}" for env in ENVIRONMENTS)
    git.run("add", "--all")
    message = t.compose(
        "Seed the lab environments",
        [(t.ACTION, "seed"), ("Seed-Versions", seed_versions)],
        body="dev, staging and prod overlays of the model server, generated by gitops-lab.",
    )
    git.run("commit", "--quiet", "--file", "-", input=message)
    git.run("tag", "--annotate", SEED_TAG, "--message", "Seed of the lab environments")
    if remote:
        git.run("remote", "add", "origin", remote)
        _publish_seed(git, remote, path)
    return SeedResult(path, "seeded", git.head(), remote)


def _publish_seed(git: Git, remote: str, path: Path) -> None:
    """Push the seed; on failure the seeded copy stays, and running `repo init` again publishes it."""
    from gitops_lab.adapters.repo.publish import push_failure

    again = f"run `gitops-lab repo init {path} --remote {remote}` again to publish it"
    try:
        proc = git.run("push", "--porcelain", "--set-upstream", "origin", BRANCH, f"refs/tags/{SEED_TAG}", check=False)
    except GitOpsLabError as exc:  # the remote did not answer in time
        exc.fix = f"{exc.fix}; then {again}" if exc.fix else again
        raise
    if proc.returncode != 0:
        raise GitError(
            f"the seed of {path} could not be published to {remote}: {push_failure(proc.stdout, proc.stderr)}",
            fix=again,
        )


def _ensure_identity(git: Git) -> None:
    for key, value in _FALLBACK_IDENTITY.items():
        if not git.run("config", key, check=False).stdout.strip():
            git.run("config", "--local", key, value)

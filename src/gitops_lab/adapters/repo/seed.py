"""Create the lab's Git repository from the template, or find the one that exists."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.beside import build_beside, settle_leftover
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import BRANCH, ENVIRONMENTS, RepoLayout
from gitops_lab.adapters.repo.publish import push_failure, push_refs
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
    #: Something the user should know though the seed is done (the remote refused its tag).
    note: str | None = None

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
    leftover = settle_leftover(path)
    result = _init(path, remote, template)
    if leftover:
        result.note = f"{leftover}; {result.note}" if result.note else leftover
    return result


def _init(path: Path, remote: str | None, template: Path | None) -> SeedResult:
    git = Git(path)
    if git.is_repo() and git.ok("rev-parse", "--verify", "--quiet", f"refs/tags/{SEED_TAG}"):
        # PATH inside a lab working copy (`repo init .` from overlays/): the working copy is its top folder.
        path = Path(git.out("rev-parse", "--show-toplevel")).resolve()
        git = Git(path)
        current = git.remote_url()
        if remote and current and current != remote:
            raise RepoStateError(
                f"{path} is already a lab working copy whose origin is {current}, not {remote}",
                fix="choose another PATH, or run without --remote to keep the existing origin",
            )
        if current and not remote_has_branch(current):
            # An earlier run seeded this copy but was stopped before the remote had it.
            note = _publish_seed(git, current, path)
            return SeedResult(path, "seeded", git.head(), current, note)
        if current and not _remote_has_seed_tag(current):
            # An earlier run's push landed the branch, but the remote refused (or never got) the tag: finish it.
            return SeedResult(path, "reused", git.head(), current, _publish_seed(git, current, path, tag_only=True))
        return SeedResult(path, "reused", git.head(), current)

    unborn = _has_no_commit(git, path)
    origin = git.remote_url() if unborn else None
    if origin and remote and origin != remote:
        raise RepoStateError(
            f"{path} is an empty clone of {origin}, not of {remote}",
            fix=f"run `gitops-lab repo init {path} --remote {origin}`, or choose a new or empty folder",
        )
    if path.exists() and any(path.iterdir()) and not unborn:
        raise RepoStateError(
            f"{path} exists and is not empty",
            fix="choose a new or empty folder for the working copy",
        )

    if remote and remote_has_branch(remote):
        # Cloned beside PATH and moved into place when complete (`beside`): a stopped clone leaves no half copy.
        with build_beside(path) as built:
            # --branch: a bare remote's HEAD may name another branch (`git init --bare` says master).
            Git(built.parent).run("clone", "--quiet", "--origin", "origin", "--branch", BRANCH, remote, str(built))
            _tag_cloned_seed(Git(built), remote)
        return SeedResult(path, "cloned", git.head(), remote)

    # Seeded beside PATH and moved into place once committed and tagged: a stopped seed leaves no half copy.
    with build_beside(path, keep_git_of_target=unborn) as built:
        _seed(Git(built), template, remote if remote and not origin else None)
    if remote:
        return SeedResult(path, "seeded", git.head(), remote, _publish_seed(git, remote, path))
    return SeedResult(path, "seeded", git.head(), remote)


def _tag_cloned_seed(git: Git, remote: str) -> None:
    """Make sure a fresh clone is the lab repository, and carries the seed tag."""
    _ensure_identity(git)
    root = git.out("rev-list", "--max-parents=0", "HEAD").split()[0]
    if not git.ok("rev-parse", "--verify", "--quiet", f"refs/tags/{SEED_TAG}") and _is_seed_commit(git, root):
        # A remote that refuses tags still holds the seed: its first commit is gitops-lab's seed commit.
        git.run("tag", "--annotate", SEED_TAG, "--message", "Seed of the lab environments", root)
    if not git.ok("rev-parse", "--verify", "--quiet", f"refs/tags/{SEED_TAG}"):
        raise RepoStateError(
            f"{remote} holds a repository that gitops-lab did not seed (no {SEED_TAG} tag)",
            fix="use an empty remote repository",
        )


def _seed(git: Git, template: Path | None, add_origin: str | None) -> None:
    """The seed commit and its tag, in ``git``'s folder (which holds at most an empty clone's .git)."""
    path = git.path
    shutil.copytree(template or environments_template(), path, ignore=_SKIP, dirs_exist_ok=True)
    git.run("init", "--quiet", "--initial-branch", BRANCH)
    git.run("symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")  # an empty clone's HEAD may name another branch
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
    if add_origin:
        git.run("remote", "add", "origin", add_origin)
    git.run("tag", "--annotate", SEED_TAG, "--message", "Seed of the lab environments")


def _has_no_commit(git: Git, path: Path) -> bool:
    """Whether ``path`` is a Git repository with nothing in it yet (only .git, no commit, no ref): a fresh
    clone of an empty repository, or a `git init`, which the seed may fill."""
    if not path.is_dir() or [p.name for p in path.iterdir()] != [".git"] or not git.is_repo():
        return False
    return not git.ok("rev-parse", "--verify", "--quiet", "HEAD") and not git.out("for-each-ref")


def _publish_seed(git: Git, remote: str, path: Path, tag_only: bool = False) -> str | None:
    """Push the seed (branch and tag); on failure the seeded copy stays, and running `repo init` again publishes it.

    A remote that takes the branch but refuses the tag (protected tags) still
    has the whole lab: the seed is known by its first commit too. That is a note
    (returned), not a failure.
    """
    again = f"run `gitops-lab repo init {path} --remote {remote}` again to publish it"
    refs = [f"refs/tags/{SEED_TAG}"] if tag_only else [BRANCH, f"refs/tags/{SEED_TAG}"]
    try:
        proc = push_refs(git, git.lab_remote() or "origin", refs, upstream=True)
    except GitOpsLabError as exc:  # the remote did not answer in time
        exc.fix = f"{exc.fix}; then {again}" if exc.fix else again
        raise
    if proc.returncode == 0:
        return None
    said = push_failure(proc.stdout, proc.stderr)
    branch = Git(".").run("ls-remote", "--heads", remote, BRANCH, check=False).stdout.split()
    if branch and branch[0] == git.head():
        return (
            f"{remote} has the seed, but refused its tag {SEED_TAG} ({said}); gitops-lab recognises the seed by its "
            "first commit, so the repository works as it is"
        )
    raise GitError(f"the seed of {path} could not be published to {remote}: {said}", fix=again)


def _remote_has_seed_tag(url: str) -> bool:
    return bool(Git(".").run("ls-remote", "--tags", url, f"refs/tags/{SEED_TAG}", check=False).stdout.strip())


def _is_seed_commit(git: Git, commit: str) -> bool:
    """Whether ``commit`` is gitops-lab's seed commit (its action trailer says so)."""
    return git.out("log", "-1", f"--format=%(trailers:key={t.ACTION},valueonly)", commit) == "seed"


def _ensure_identity(git: Git) -> None:
    for key, value in _FALLBACK_IDENTITY.items():
        if not git.run("config", key, check=False).stdout.strip():
            git.run("config", "--local", key, value)

"""Commit a change and publish it, safely, on the main branch.

The rules every change follows (promote, rollback, approve, repo init, lab
reset and the lab actions):
- start only from a clean working copy on ``main`` with no operation half-done;
- start from what the remote has: fetch, fast-forward, and refuse to build on
  local commits the remote does not have (so "nothing to do" is the remote's
  verdict, never that of an unpublished commit);
- one commit per change;
- if the push is rejected because the remote moved, fetch, rebase the local
  commits onto it and retry, a bounded number of times; before any rebase the
  local branch is saved under ``refs/gitops-lab/backup/`` so nothing is lost;
- publish or undo (``published_or_undone``): when anything stops the change
  before the remote has it (a refusing hook, a conflict, a timeout, Ctrl-C,
  SIGTERM), the working copy goes back to where it was and the unpublished
  commit is kept on a backup ref that the error names; running the same
  command again then does the whole job;
- published history is never rewritten: no force push, ever.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_lab import signals
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import BRANCH
from gitops_lab.errors import GitError, GitOpsLabError, Interrupted, RepoStateError

PUSH_ATTEMPTS = 4
BACKUP_PREFIX = "refs/gitops-lab/backup"
#: How long an undo may ask the remote whether a stopped push reached it after all.
UNDO_FETCH_SECONDS = 10


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
        untracked_only = all(line.startswith("?? ") for line in git.porcelain_status())
        raise RepoStateError(
            f"the working copy has uncommitted changes: {shown}",
            fix="commit them, or move them away (`git stash --include-untracked`) first"
            if untracked_only
            else "commit or stash them first",
        )


REMOTE_BRANCH = f"origin/{BRANCH}"


def catch_up(git: Git, unpublished: str = "publish") -> None:
    """Make the local main what the remote has, so every decision is the remote's.

    Behind: fast-forward. Local commits the remote does not have (for example
    from a run that was killed), by ``unpublished``:
    - "publish" (every write): push them first when that is a fast-forward;
      diverged history is refused, since rebasing someone's commits would
      publish trailers that describe an older remote;
    - "drop" (lab reset, which saved HEAD on a backup ref): leave them behind;
    - "keep" (`up` re-run): leave the local branch as it is.
    """
    url = git.remote_url()
    if not url:
        return
    fetched = git.run("fetch", "--quiet", "origin", BRANCH, check=False)
    if fetched.returncode != 0 and "couldn't find remote ref" not in fetched.stderr:
        raise GitError(
            f"cannot fetch from {url}: {push_failure('', fetched.stderr)}",
            fix="check that the remote exists and answers (`git ls-remote origin`), then re-run",
        )
    if fetched.returncode != 0:
        raise RepoStateError(
            f"the remote {url} has no {BRANCH} branch",
            fix="publish the lab repository there with `gitops-lab repo init PATH --remote URL`",
        )
    local_only = git.out("rev-list", f"{REMOTE_BRANCH}..HEAD").split()
    if not local_only:
        git.run("merge", "--quiet", "--ff-only", REMOTE_BRANCH)
    elif unpublished == "drop":
        git.run("reset", "--quiet", "--hard", REMOTE_BRANCH)
    elif unpublished == "keep":
        return
    elif git.ok("merge-base", "--is-ancestor", REMOTE_BRANCH, "HEAD"):
        _publish_unpublished(git, url, local_only)
    else:
        raise RepoStateError(
            f"{BRANCH} and {url} have diverged: {_describe(git, local_only)} here, and the remote has commits "
            "this copy does not",
            fix=f"publish your commits with `git pull --rebase && git push`, or set them aside with "
            f"`git branch keep-{local_only[0][:7]} && git reset --hard {REMOTE_BRANCH}`, then re-run",
        )


def _publish_unpublished(git: Git, url: str, unpublished: list[str]) -> None:
    proc = git.run("push", "--porcelain", "origin", f"HEAD:refs/heads/{BRANCH}", check=False)
    if proc.returncode != 0:
        raise GitError(
            f"{_describe(git, unpublished)} here that {url} does not have could not be published first: "
            f"{push_failure(proc.stdout, proc.stderr)}",
            fix=f"publish them yourself (`git push`), or set them aside with "
            f"`git branch keep-{unpublished[0][:7]} && git reset --hard {REMOTE_BRANCH}`, then re-run",
        )


def _describe(git: Git, commits: list[str]) -> str:
    """ "1 commit (abc1234 Subject)" for the newest of ``commits``, newest first."""
    newest = git.out("log", "-1", "--format=%h %s", commits[0])
    more = f" and {len(commits) - 1} more" if len(commits) > 1 else ""
    return f"{len(commits)} commit{'s' if len(commits) > 1 else ''} ({newest}{more})"


def is_published(git: Git, commit: str) -> bool:
    """Whether the remote has ``commit`` as far as the last fetch or push saw (True without a remote)."""
    if not git.remote_url():
        return True
    return git.ok("merge-base", "--is-ancestor", commit, f"refs/remotes/{REMOTE_BRANCH}")


@contextmanager
def published_or_undone(git: Git, what: str) -> Iterator[None]:
    """Everything inside either ends with ``what`` published, or is undone.

    Undone: an operation left half-done is aborted, the working copy goes back
    to the commit it was on (it was clean when the change started) and a commit
    the remote does not have is kept on a backup ref. The error (or, for
    SIGINT/SIGTERM, an Interrupted) says so and names the ref.
    """
    before = git.head()
    try:
        yield
    except BaseException as exc:
        with signals.signals_held():
            kept = _undo(git, before, what)
        if kept is None:
            raise
        left = (
            f"{what} was not published: the working copy is back at {before[:7]} and the unpublished commit "
            f"is kept on {kept}"
        )
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(
                f"interrupted by {signals.signal_name(exc)}; {left}",
                fix="re-run the same command to finish",
                exit_code=signals.exit_code(exc),
            ) from exc
        if isinstance(exc, GitOpsLabError):
            exc.message = f"{exc.message}; {left}"
            exc.fix = exc.fix or "re-run the same command to finish"
            exc.unpublished = kept
        raise


def _refresh_remote_branch(git: Git) -> None:
    """Fetch the remote's main within a few seconds; no answer leaves what the last push saw."""
    from gitops_lab.kube.deadline import command_deadline

    try:
        with command_deadline(UNDO_FETCH_SECONDS):
            git.run("fetch", "--quiet", "origin", BRANCH, check=False)
    except GitOpsLabError:
        pass


def _undo(git: Git, before: str, what: str) -> str | None:
    """Put the working copy back at ``before``; the backup ref of an unpublished commit, if one was made."""
    operation = git.in_progress_operation()
    if operation:
        git.run(operation, "--abort", check=False)
    head = git.head()
    if head != before and not is_published(git, head):
        _refresh_remote_branch(git)  # a push stopped late may have reached the remote all the same
    if head != before and is_published(git, head):
        return None  # the remote has it: nothing to undo
    kept = backup_ref(git, "unpublished-" + re.sub(r"[^A-Za-z0-9]+", "-", what).strip("-")) if head != before else None
    git.run("reset", "--quiet", "--hard", before)
    git.run("clean", "--quiet", "--force", "-d")
    return kept


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
        last = proc.stderr + proc.stdout
        if not _rejected_because_remote_moved(last):
            raise GitError(
                f"push to {git.remote_url()} failed: {push_failure(proc.stdout, proc.stderr)}",
                fix="settle what the remote objects to, then re-run the same command",
            )
        if on_retry:
            on_retry(attempt, "the remote moved; rebasing onto it")
        saved = backup_ref(git, "before-rebase")
        git.run("fetch", "--quiet", "origin", BRANCH)
        rebase = git.run("rebase", "--quiet", f"origin/{BRANCH}", check=False)
        if rebase.returncode != 0:
            git.run("rebase", "--abort", check=False)
            # Not `git pull --rebase`: the commit's trailers (previous version, gate
            # verdicts) describe the old remote and would be published stale.
            raise GitError(
                f"the remote changed the same lines concurrently, so the change could not be rebased onto it "
                f"(the state before the rebase is on {saved})",
                fix="re-run the same command: it starts again from what the remote has now",
            )
    raise GitError(f"push kept being rejected after {PUSH_ATTEMPTS} attempts: {push_failure(proc.stdout, proc.stderr)}")


def _rejected_because_remote_moved(text: str) -> bool:
    if "[remote rejected]" in text:
        return "cannot lock ref" in text or "failed to update ref" in text
    markers = ("[rejected]", "non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref")
    return any(marker in text for marker in markers)


def push_failure(stdout: str, stderr: str) -> str:
    """Why a push failed, in the remote's own words (hook output), without git's chatter ("Done", hints)."""
    said = [line[len("remote:") :].strip() for line in stderr.splitlines() if line.startswith("remote:")]
    said = [line for line in said if line]
    refused = [line.split("\t")[-1].strip() for line in stdout.splitlines() if line.startswith("!")]
    errors = [
        line.strip().removeprefix("fatal: ").removeprefix("error: ")
        for line in stderr.splitlines()
        if line.startswith(("fatal:", "error:")) and "failed to push some refs" not in line
    ]
    parts = []
    if refused:
        parts.append("the remote refused it: " + "; ".join(dict.fromkeys(refused)))
    if said:
        parts.append("the remote said: " + " | ".join(said))
    if not parts:
        parts = errors or [line.strip() for line in stderr.splitlines() if line.strip()][-1:] or ["no output"]
    return "; ".join(parts)

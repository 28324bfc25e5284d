"""Commit a change and publish it, safely, on the main branch.

The rules every change follows (promote, rollback, approve, repo init, lab
reset and the lab actions):
- start only from a clean working copy on ``main`` with no operation half-done;
- start from what the remote has: fetch, fast-forward, and refuse to build on
  local commits the remote does not have, naming them (a command publishes the
  commit it made and nothing else; "nothing to do" is the remote's verdict,
  never that of an unpublished commit);
- a write marks itself while it runs (``refs/gitops-lab/write/*``: the commit it
  started from, the commit it is pushing), so the next run recognises what a
  killed run left: a commit the remote took after all is "already done", one it
  never got is set aside on a backup ref, and the user is told which;
- one commit per change;
- if the push is rejected because the remote moved, fetch, rebase the local
  commits onto it and retry, a bounded number of times; before any rebase the
  local branch is saved under ``refs/gitops-lab/backup/`` so nothing is lost;
- publish or undo (``published_or_undone``): when anything stops the change
  before the remote has it (a refusing hook, a conflict, a timeout, Ctrl-C,
  SIGTERM), the working copy goes back to where it was and the unpublished
  commit is kept on a backup ref that the error names; running the same
  command again then does the whole job. A push cut off before the remote
  answered may still land (an HTTP server can finish it after the client
  left): that is said as such, and the re-run asks the remote first;
- published history is never rewritten: no force push, ever.

Every push is here: a change on main (``push``), a tag (``push_tag``), and refs
a remote does not have yet, a seed's or the platform repository's (``push_refs``).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitops_lab import signals
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import BRANCH
from gitops_lab.deadline import command_deadline
from gitops_lab.errors import GitError, GitOpsLabError, Interrupted, RepoStateError

PUSH_ATTEMPTS = 4
BACKUP_PREFIX = "refs/gitops-lab/backup"
#: How long an undo may ask the remote whether a stopped push reached it after all.
UNDO_FETCH_SECONDS = 10
#: While a write runs: the commit it started from, and the commit its push is sending. Left behind only
#: by a run that was killed, or whose push was cut off before the remote answered.
WRITE_BASE = "refs/gitops-lab/write/base"
WRITE_PUSHING = "refs/gitops-lab/write/pushing"


class AlreadyOnRemote(Exception):
    """Raised by ``push`` when the remote, which moved meanwhile, already has the change: rebased onto it,
    the commit was left empty. Not an error: the caller reports it as "already done" (``commit``)."""

    def __init__(self, commit: str):
        super().__init__(commit)
        self.commit = commit


def check_clean(git: Git) -> None:
    """Refuse to start a change in a working copy that is not ready for one."""
    if not git.is_repo():
        raise RepoStateError(
            f"{git.path} is not a Git working copy",
            fix="run `gitops-lab repo init PATH` or pass --repo",
        )
    if not git.ok("rev-parse", "--verify", "--quiet", "HEAD"):
        raise RepoStateError(
            f"{git.path} has no commits yet (a clone of an empty repository?)",
            fix=f"seed it with `gitops-lab repo init {git.path} --remote URL`",
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


def remote_branch(git: Git) -> str:
    """The remote-tracking ref of what the lab's remote has (``origin/main``, or the remote main follows)."""
    return f"{git.lab_remote() or 'origin'}/{BRANCH}"


@dataclass
class Recovered:
    """What ``catch_up`` found of an earlier run that was stopped during its write."""

    note: str
    #: The stopped run's commit, when the remote took it after all.
    landed: str | None = None

    def trailers(self, git: Git) -> dict[str, str]:
        """The landed commit's gitops-lab trailers (empty when nothing landed)."""
        if not self.landed:
            return {}
        block = git.out("log", "-1", "--format=%(trailers:only,unfold)", self.landed)
        return {key: values[-1] for key, values in t.parse(block).items()}

    def author(self, git: Git) -> str:
        return git.out("log", "-1", "--format=%an", self.landed) if self.landed else ""


def catch_up(git: Git, unpublished: str = "refuse") -> Recovered | None:
    """Make the local main what the remote has, so every decision is the remote's.

    First what a stopped earlier write left (``_recover``). Then, behind:
    fast-forward. Local commits the remote does not have, by ``unpublished``:
    - "refuse" (every write): refuse, naming them: a command publishes the
      commit it makes and nothing else (a learner's unpushed commit must not
      reach an environment without its gates);
    - "drop" (lab reset, which saved HEAD on a backup ref): leave them behind;
    - "keep" (`up` re-run): leave the local branch as it is.
    """
    remote = git.lab_remote()
    url = git.remote_url(remote) if remote else None
    if not remote or not url:
        _refuse_other_remotes(git)
        _clear_marks(git)
        return None
    tracking = f"{remote}/{BRANCH}"
    fetched = git.run("fetch", "--quiet", remote, BRANCH, check=False)
    if fetched.returncode != 0 and "couldn't find remote ref" not in fetched.stderr:
        raise GitError(
            f"cannot fetch from {url}: {push_failure('', fetched.stderr)}",
            fix=f"check that the remote exists and answers (`git ls-remote {remote}`), then re-run",
        )
    if fetched.returncode != 0:
        raise RepoStateError(
            f"the remote {url} has no {BRANCH} branch",
            fix="publish the lab repository there with `gitops-lab repo init PATH --remote URL`",
        )
    recovered = _recover(git, url, tracking)
    local_only = git.out("rev-list", f"{tracking}..HEAD").split()
    if not local_only:
        git.run("merge", "--quiet", "--ff-only", tracking)
    elif unpublished == "drop":
        git.run("reset", "--quiet", "--hard", tracking)
    elif unpublished == "keep":
        pass
    elif git.ok("merge-base", "--is-ancestor", tracking, "HEAD"):
        raise RepoStateError(
            f"{_describe(git, local_only)} here that {url} does not have; gitops-lab publishes only the commit it "
            "makes, never yours",
            fix=f"publish them yourself (`git push {remote} {BRANCH}`), or drop them "
            f"(`git branch keep-{local_only[0][:7]} && git reset --hard {tracking}` keeps a copy), then re-run",
        )
    else:
        raise RepoStateError(
            f"{BRANCH} and {url} have diverged: {_describe(git, local_only)} here, and the remote has commits "
            "this copy does not",
            fix=f"publish your commits with `git pull --rebase && git push`, or set them aside with "
            f"`git branch keep-{local_only[0][:7]} && git reset --hard {tracking}`, then re-run",
        )
    return recovered


def _refuse_other_remotes(git: Git) -> None:
    """Remotes, but none the lab's branch follows and none named `origin`: a commit made here would stay
    local while the user expects it published, so the write is refused, naming the remotes and the fix."""
    others = git.remotes()
    if not others:
        return  # a purely local lab repository: nothing is published, and the commands say so
    name = others[0]
    raise RepoStateError(
        f"{git.path} has {'remotes' if len(others) > 1 else 'a remote'} ({', '.join(others)}), but {BRANCH} "
        f"follows none of them and none is named origin, so a change would stay local; nothing was changed",
        fix=f"make {BRANCH} follow the lab's remote (`git -C {git.path} fetch {name} && git -C {git.path} branch "
        f"--set-upstream-to {name}/{BRANCH} {BRANCH}`), then re-run",
    )


def _ref(git: Git, ref: str) -> str | None:
    proc = git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _clear_marks(git: Git) -> None:
    for ref in (WRITE_BASE, WRITE_PUSHING):
        git.run("update-ref", "-d", ref, check=False)


def _recover(git: Git, url: str, tracking: str) -> Recovered | None:
    """Finish or undo what an earlier write left when it was killed or its push was cut off (just fetched).

    Its push reached the remote after all: that is the remote's history now (the
    caller fast-forwards to it), and ``landed`` names the commit so a re-run of
    the same command is "already done" instead of doing it twice. It did not:
    its own commits (those since the mark, each carrying gitops-lab's trailers or
    being the commit it was pushing) go to a backup ref, and this run starts
    from the remote. Anything else stays, and is refused as the user's.
    """
    base, pushing = _ref(git, WRITE_BASE), _ref(git, WRITE_PUSHING)
    if base is None and pushing is None:
        return None
    try:
        if pushing and git.ok("merge-base", "--is-ancestor", pushing, tracking):
            shown = git.out("log", "-1", "--format=%h (%s, by %an)", pushing)
            return Recovered(
                f"an earlier run that was stopped during its push published {shown} to {url} after all", pushing
            )
        branch = _remote_branch_at(git, pushing) if pushing else None
        if pushing and branch:
            shown = git.out("log", "-1", "--format=%h (%s)", pushing)
            return Recovered(f"an earlier run that was stopped during its push published {shown} to {branch} after all")
        head = git.head()
        if not base or head == base or not git.ok("merge-base", "--is-ancestor", base, head):
            if pushing:
                shown = git.out("log", "-1", "--format=%h (%s)", pushing)
                return Recovered(f"an earlier run's commit {shown} never reached {url}; starting again from the remote")
            return None
        own = git.out("rev-list", f"{base}..HEAD", f"^{tracking}").split()
        if not own or not all(c == pushing or _is_tools(git, c) for c in own) or git.dirty_files():
            return None
        kept = backup_ref(git, "stopped-run")
        described = _describe(git, own)
        git.run("reset", "--quiet", "--hard", base)
        return Recovered(
            f"{described} that an earlier, stopped run left unpublished is set aside on {kept}; "
            "starting again from the remote"
        )
    finally:
        _clear_marks(git)


def _remote_branch_at(git: Git, commit: str) -> str | None:
    """The remote's branch (other than main) whose tip is ``commit``: where a stopped push to a side branch (a pull
    request's) landed after all; None when none is, or the remote does not answer."""
    listed = git.run("ls-remote", "--heads", git.lab_remote() or "origin", check=False)
    for line in listed.stdout.splitlines() if listed.returncode == 0 else []:
        sha, _, ref = line.partition("\t")
        if sha == commit and ref != f"refs/heads/{BRANCH}":
            return ref.removeprefix("refs/heads/")
    return None


def _is_tools(git: Git, commit: str) -> bool:
    """Whether ``commit`` carries gitops-lab's own mark (its action trailer)."""
    return bool(git.out("log", "-1", f"--format=%(trailers:key={t.ACTION},valueonly)", commit))


def _describe(git: Git, commits: list[str]) -> str:
    """ "2 commits (abc1234 Subject, def5678 Subject)" for ``commits``, newest first (at most 5 named)."""
    named = ", ".join(git.out("log", "-1", "--format=%h %s", c) for c in commits[:5])
    more = f" and {len(commits) - 5} more" if len(commits) > 5 else ""
    return f"{len(commits)} commit{'s' if len(commits) > 1 else ''} ({named}{more})"


def is_published(git: Git, commit: str) -> bool:
    """Whether the remote has ``commit`` as far as the last fetch or push saw (True without a remote)."""
    remote = git.lab_remote()
    if not remote:
        return True
    return git.ok("merge-base", "--is-ancestor", commit, f"refs/remotes/{remote}/{BRANCH}")


@dataclass
class Undone:
    """What ``_undo`` did: ``kept`` is the backup ref of the unpublished commit (None: there was none);
    ``snapshot`` the ref that saved the user's uncommitted work as it was when the undo began (None: there
    was none); ``overlapped`` the paths whose user edits overlapped the tool's change, so they are back as
    they were and the user's version is on ``snapshot`` only."""

    kept: str | None
    snapshot: str | None = None
    overlapped: tuple[str, ...] = ()

    def what_is_left(self, before: str) -> str:
        left = f"the working copy is back at {before[:7]}"
        if self.snapshot and self.overlapped:
            left += (
                f" with your other uncommitted changes kept; your edits to {', '.join(self.overlapped)} overlapped "
                f"its change and are saved on {self.snapshot} (`git checkout {self.snapshot} -- PATH` brings one back)"
            )
        elif self.snapshot:
            left += f" with your uncommitted changes kept (a copy is on {self.snapshot})"
        return left


@contextmanager
def published_or_undone(git: Git, what: str) -> Iterator[None]:
    """Everything inside either ends with ``what`` published, or is undone.

    Undone: an operation left half-done is aborted, the tool's own change (its
    commits since the start, and what it staged) is taken back out of the
    working copy, and a commit the remote does not have is kept on a backup
    ref. Edits and new files the user made in the working copy while the
    command ran stay, and are first saved on a backup ref too. The error (or,
    for a signal, an Interrupted) says so and names the refs. When the push was
    cut off before the remote answered, the marks stay (``_recover``) and the
    error says the change may or may not have reached the remote.
    """
    before = git.head()
    git.run("update-ref", WRITE_BASE, before)
    try:
        yield
    except BaseException as exc:
        with signals.signals_held():
            undone = _undo(git, before, what)
            unknown = undone is not None and undone.kept is not None and _ref(git, WRITE_PUSHING) is not None
            if not unknown:
                _clear_marks(git)
        if undone is None or (undone.kept is None and undone.snapshot is None):
            raise
        left = undone.what_is_left(before)
        if unknown:
            left = (
                f"{what} may or may not have reached the remote (its push was cut off before the remote answered): "
                f"{left} and the commit is kept on {undone.kept}"
            )
            rerun = "re-run the same command to check: it asks the remote first, and says so if it is already done"
        elif undone.kept:
            left = f"{what} was not published: {left} and the unpublished commit is kept on {undone.kept}"
            rerun = "re-run the same command to finish"
        else:
            left = f"{what} was not made: {left}"
            rerun = "re-run the same command"
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(
                f"interrupted by {signals.signal_name(exc)}; {left}", fix=rerun, exit_code=signals.exit_code(exc)
            ) from exc
        if isinstance(exc, GitOpsLabError):
            exc.message = f"{exc.message}; {left}"
            exc.fix = rerun if unknown else exc.fix or rerun
            exc.unpublished = undone.kept
        raise
    else:
        _clear_marks(git)


def _refresh_remote_branch(git: Git) -> None:
    """Fetch the remote's main within a few seconds; no answer leaves what the last push saw."""
    remote = git.lab_remote()
    if not remote:
        return
    try:
        with command_deadline(UNDO_FETCH_SECONDS):
            git.run("fetch", "--quiet", remote, BRANCH, check=False)
    except GitOpsLabError:
        pass


def _undo(git: Git, before: str, what: str) -> Undone | None:
    """Take the tool's own change back out of the working copy; None when there was nothing to undo.

    The tool's change is what it committed since ``before`` plus what it staged
    (every write stages before it commits); unstaged edits and untracked files
    are the user's, made while the command ran. Those are saved on a backup ref
    first and stay in the working copy: only the tool's diff is reversed.
    """
    operation = git.in_progress_operation()
    if operation:
        git.run(operation, "--abort", check=False)
    head = git.head()
    if head != before and not is_published(git, head):
        _refresh_remote_branch(git)  # a push stopped late may have reached the remote all the same
    if head != before and is_published(git, head):
        return None  # the remote has it: nothing to undo
    ours = [p for p in git.out("diff", "--cached", "--name-only", "--no-renames", "-z", before).split("\0") if p]
    if head == before and not ours:
        return None  # the tool changed nothing
    kept = backup_ref(git, "unpublished-" + _slug(what)) if head != before else None
    users = set(_users_changes(git))
    snapshot = snapshot_uncommitted(git, "uncommitted-during-" + _slug(what)) if users else None
    patches = {p: git.out("diff", "--cached", "--binary", "--no-renames", before, "--", p) for p in ours if p in users}
    # Index and HEAD back to `before`; the working tree keeps the tool's change and the user's edits alike.
    git.run("reset", "--quiet", "--mixed", before)
    overlapped = []
    for path in ours:
        if path in users:
            # The user edited a file the tool changed: take out the tool's hunks only, if they still apply.
            patch = patches[path] + "\n"
            if git.run("apply", "--reverse", "--binary", "-", input=patch, check=False).returncode == 0:
                continue
            overlapped.append(path)
        if git.ok("cat-file", "-e", f"{before}:{path}"):
            git.run("checkout", before, "--", path)
        else:
            _remove_added(git.path, path)
    return Undone(kept, snapshot, tuple(overlapped))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _users_changes(git: Git) -> list[str]:
    """Paths the user changed in the working copy while the command ran (unstaged edits, untracked files):
    every write of the tool is staged before it is committed, so what is not staged is not the tool's."""
    entries = git.run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames").stdout.split("\0")
    return [entry[3:] for entry in entries if len(entry) > 3 and entry[1] != " "]


def _remove_added(root: Path, path: str) -> None:
    """Remove a file the tool added, and the folders it made for it if they are left empty."""
    target = root / path
    target.unlink(missing_ok=True)
    for folder in target.parents:
        if folder == root or not folder.is_relative_to(root) or any(folder.iterdir()):
            break
        folder.rmdir()


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


def push(git: Git, on_retry: Callable[[int, str], None] | None = None, branch: str = BRANCH) -> bool:
    """Push HEAD to main (or to ``branch``); rebase and retry when main moved. False when there is no remote.

    A side ``branch`` (a promotion's pull request branch) is the tool's own: it
    is never rebased, and a refusal there is raised at once.
    """
    remote = git.lab_remote()
    url = git.remote_url(remote) if remote else None
    if not remote or not url:
        return False
    tracking = f"{remote}/{BRANCH}"
    last = ""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        # Marked while git push runs: a push that never returns (a kill, a deadline) has an unknown outcome.
        git.run("update-ref", WRITE_PUSHING, "HEAD")
        proc = git.run("push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", check=False)
        if proc.returncode != 0 and cut_off(proc.stdout, proc.stderr):
            # The remote went away mid-push (it answered the fetch before): it may have taken the commit.
            # The mark stays, so the undo says so and the re-run asks the remote (``_recover``).
            raise GitError(
                f"push to {url} was cut off: {push_failure(proc.stdout, proc.stderr)}",
                fix=f"once {url} answers again, re-run the same command",
            )
        git.run("update-ref", "-d", WRITE_PUSHING)
        if proc.returncode == 0:
            return True
        last = proc.stderr + proc.stdout
        if branch != BRANCH or not _rejected_because_remote_moved(last):
            raise GitError(
                f"push to {url} failed: {push_failure(proc.stdout, proc.stderr)}",
                fix="settle what the remote objects to, then re-run the same command",
            )
        if on_retry:
            on_retry(attempt, "the remote moved; rebasing onto it")
        saved = backup_ref(git, "before-rebase")
        git.run("fetch", "--quiet", remote, BRANCH)
        rebase = git.run("rebase", "--quiet", tracking, check=False)
        if rebase.returncode == 0 and not git.out("rev-list", f"{tracking}..HEAD"):
            # Another copy made the same change first: nothing of ours is left to push.
            raise AlreadyOnRemote(git.head())
        if rebase.returncode != 0:
            conflicted = git.in_progress_operation() == "rebase"
            if conflicted:
                git.run("rebase", "--abort", check=False)
            # Not `git pull --rebase`: the commit's trailers (previous version, gate
            # verdicts) describe the old remote and would be published stale.
            raise _rebase_failure(git, conflicted, rebase.stderr or rebase.stdout, saved)
    raise GitError(f"push kept being rejected after {PUSH_ATTEMPTS} attempts: {push_failure(proc.stdout, proc.stderr)}")


def push_tag(git: Git, tag: str) -> bool:
    """Push ``tag`` to the lab's remote, never forced; False when there is no remote. GitError, in git's
    words, when the remote refuses it."""
    if not git.remote_url():
        return False
    git.run("push", "--quiet", git.lab_remote() or "origin", f"refs/tags/{tag}")
    return True


def push_refs(git: Git, remote: str, refs: list[str], upstream: bool = False) -> subprocess.CompletedProcess:
    """Push ``refs`` (branches, ``refs/tags/...``) to ``remote`` (a name or a URL) that does not have them
    yet: a seed, the platform repository. One plain push, never forced and never rebased; with
    ``upstream`` the pushed branch follows ``remote`` after. Returns git's answer, for the caller to say
    what a refusal means (``push_failure``)."""
    return git.run("push", "--porcelain", *(["--set-upstream"] if upstream else []), remote, *refs, check=False)


def _rebase_failure(git: Git, conflicted: bool, said: str, saved: str) -> GitError:
    """Why the rebase onto the remote failed, as it is: a real conflict, or the working copy in the way."""
    if conflicted:
        return GitError(
            f"the remote changed the same lines concurrently, so the change could not be rebased onto it "
            f"(the state before the rebase is on {saved})",
            fix="re-run the same command: it starts again from what the remote has now",
        )
    # git refused to start the rebase: uncommitted changes made in the working copy while the command ran.
    edited = _users_changes(git)
    shown = ", ".join(edited[:5]) + (f" and {len(edited) - 5} more" if len(edited) > 5 else "")
    because = f"uncommitted changes made in the working copy while it ran ({shown})" if edited else _first(said)
    return GitError(
        f"the remote moved while the command ran, and the change could not be rebased onto it because of {because}",
        fix="commit or stash those changes, then re-run the same command",
    )


def _first(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("hint:")]
    return lines[0].removeprefix("error: ").removeprefix("fatal: ") if lines else "git gave no reason"


def _rejected_because_remote_moved(text: str) -> bool:
    if "[remote rejected]" in text:
        return "cannot lock ref" in text or "failed to update ref" in text
    markers = ("[rejected]", "non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref")
    return any(marker in text for marker in markers)


#: git's words when the connection to the remote failed during a push (HTTP or its own protocol), not a refusal.
_CUT_OFF = (
    "RPC failed",
    "hung up unexpectedly",
    "unexpected disconnect",
    "Connection reset",
    "Empty reply from server",
    "Failed to connect",
    "Recv failure",
    "Send failure",
)


def cut_off(stdout: str, stderr: str) -> bool:
    """Whether a failed push lost its connection to the remote (which may have taken it or not), rather than
    being refused (a ``!`` line of ``--porcelain``: git knows the remote did not take it)."""
    refused = any(line.startswith("!") for line in stdout.splitlines())
    return not refused and any(words in stderr for words in _CUT_OFF)


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

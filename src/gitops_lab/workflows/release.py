"""Automated promotion with automatic rollback: `gitops-lab release`.

A release takes the version dev runs (a learner put it there with a commit, or
`gitops-lab promote --to dev`) through every environment:

    dev:      wait until it serves the commit, verify
    staging:  promote (gates), wait, verify
    prod:     promote (gates, approval included), wait, verify

When a verification fails, the release rolls that environment back by itself:
a revert of the commit that brought the version in, whose trailers carry the
reason and every check's verdict, pushed; then it waits until the previous
version serves again, and stops with VerificationFailed (exit code 4) naming
the failed check. If the rollback itself cannot finish (the push is refused,
the engine is down), RollbackFailed says what was and was not done and where
the revert commit is kept: like every Git write, an unpublished revert is
undone from the working copy and kept on a backup ref.

Every fact lives in Git: the commit that started a release is named in the
``Release-Trigger`` trailer of each promotion and rollback it makes, so a
release can be resumed (after an approval) and is never started twice. The
watch mode (``watch``) polls the remote and starts a release whenever a push
changes dev's version; restarted, it starts after the last change the
automation handled (``last_handled``), so a push made while no watch ran is
still released.

Only one release acts on a lab at a time (``release_lock``); what it was doing
is recorded there, so a release stopped mid-way (killed, the terminal closed)
is finished by the next one (``resume``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gitops_lab.adapters import repo
from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.history import log_entries
from gitops_lab.adapters.repo.layout import ENVIRONMENTS, VERSION_LABEL, RepoLayout, overlay_path
from gitops_lab.adapters.repo.pushed import fetch_pushed, pushed_ref, version_at
from gitops_lab.adapters.repo.seed import BRANCH
from gitops_lab.deadline import Deadline
from gitops_lab.errors import (
    ClusterError,
    EngineError,
    GateFailed,
    GitError,
    GitOpsLabError,
    RepoStateError,
    RollbackFailed,
    VerificationFailed,
    WaitTimeout,
)
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.converge import converge
from gitops_lab.workflows.promotion import run_promotion
from gitops_lab.workflows.release_lock import Journal, is_held, read_holder, release_lock
from gitops_lab.workflows.verify import VerificationReport, VerifyTarget, expected_from_git, kube_target, verify

RELEASE_TRIGGER = t.RELEASE_TRIGGER
ROLLBACK_REASON = t.ROLLBACK_REASON
ROLLED_BACK_BY = t.ROLLED_BACK_BY
AUTOMATION = "gitops-lab release (automatic)"
# Commits that change dev's version without asking for a release.
NOT_RELEASES = ("seed", "rollback", "lab-reset", "restore")


@dataclass
class Deployment:
    """How a release reaches the environments (a cluster, or local processes in tests).

    ``wait(env, commit, version, deadline, reporter)`` returns once ``env`` serves
    ``version`` from ``commit``; ``target(env)`` is where verification talks to it.
    """

    wait: Callable[[str, str, str, Deadline, Reporter], None]
    target: Callable[[str], VerifyTarget]


@dataclass
class Stage:
    environment: str
    outcome: str  # verified, rolled-back, awaiting-approval
    commit: str | None  # the promotion (or rollback) it made, None when it changed nothing
    summary: str
    checks: list[dict] = field(default_factory=list)


@dataclass
class ReleaseResult:
    version: str
    trigger: str
    stages: list[Stage]

    @property
    def complete(self) -> bool:
        return len(self.stages) == len(ENVIRONMENTS) and all(s.outcome == "verified" for s in self.stages)

    @property
    def awaiting_approval(self) -> bool:
        return bool(self.stages) and self.stages[-1].outcome == "awaiting-approval"

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "trigger": self.trigger,
            "complete": self.complete,
            "stages": [asdict(s) for s in self.stages],
        }


def find_trigger(git: Git, ref: str, since: str | None = None) -> str | None:
    """The newest commit (after ``since``) that changed dev's version and asks for a release."""
    span = f"{since}..{ref}" if since else ref
    pattern = rf"^\s*{VERSION_LABEL}:"
    commit = git.out("log", "-1", "--format=%H", "-G", pattern, span, "--", overlay_path(ENVIRONMENTS[0]))
    if not commit:
        return None
    [entry] = log_entries(git, f"{commit}^!")
    return None if (entry.trailer(t.ACTION) or "") in NOT_RELEASES else commit


def rollback_of(git: Git, trigger: str, ref: str):
    """The rollback a release of ``trigger`` ended in (a LogEntry), else None."""
    for entry in log_entries(git, f"{trigger}..{ref}"):
        if trigger in entry.trailers.get(RELEASE_TRIGGER, []) and "rollback" in entry.trailers.get(t.ACTION, []):
            return entry
    return None


def handled(git: Git, trigger: str, ref: str) -> bool:
    """Whether a release of ``trigger`` already ended in a rollback."""
    return rollback_of(git, trigger, ref) is not None


def last_handled(git: Git, ref: str) -> str | None:
    """The trigger of the newest promotion or rollback the automation made on ``ref``, else None."""
    values = git.out("log", f"--format=%(trailers:key={RELEASE_TRIGGER},valueonly,separator=%x20)", ref)
    return next((line.split()[-1] for line in values.splitlines() if line.strip()), None)


def run_release(
    reporter: Reporter,
    repo_path: Path,
    deployment: Deployment,
    deadline: Deadline,
    trigger: str | None = None,
    journal: Journal | None = None,
) -> ReleaseResult:
    """Walk the version dev runs through every environment, verifying each; roll back on failure.

    ``trigger`` is the commit that asked for the release (the watch's); without it,
    the newest commit that set dev's version. ``journal`` (the release lock held)
    records each step, so a release stopped mid-way is finished by the next one.
    """
    acted: list[str] = []

    def step(trigger: str, version: str, what: str) -> None:
        if journal is not None:
            journal.acting(trigger, version, what)
            acted.append(what)

    try:
        result = _release(reporter, repo_path, deployment, deadline, trigger, step)
    except GitOpsLabError:
        if journal is not None and acted:
            journal.finished()  # an end it reported (rolled back, refused, failed): nothing to resume
        raise
    if journal is not None and acted:
        journal.finished()
    return result


def _release(
    reporter: Reporter,
    repo_path: Path,
    deployment: Deployment,
    deadline: Deadline,
    trigger: str | None,
    step: Callable[[str, str, str], None],
) -> ReleaseResult:
    git, layout = Git(repo_path), RepoLayout(repo_path)
    publish.check_clean(git)
    publish.catch_up(git)
    version = layout.model_version(ENVIRONMENTS[0])
    if trigger is None:
        # Typed by a person: release what dev runs, however it got there.
        if layout.model_version(ENVIRONMENTS[-1]) == version:
            raise GateFailed(
                f"nothing to release: {ENVIRONMENTS[-1]} already runs {version}, the version dev runs",
                fix="commit a new model version to overlays/dev and push it, then run this again",
            )
        trigger = _commit_that_set(git, ENVIRONMENTS[0], version)
    result = ReleaseResult(version, trigger, [])
    previous_report: VerificationReport | None = None
    for index, env in enumerate(ENVIRONMENTS):
        step(trigger, version, f"releasing to {env}")
        if index == 0:
            entered, commit = trigger, git.head()
        else:
            promoted = _promote(
                reporter, repo_path, ENVIRONMENTS[index - 1], env, version, trigger, previous_report, result, deadline
            )
            if promoted is None:
                return result
            commit = promoted.commit or git.head()
            entered = promoted.commit or _commit_that_set(git, env, version)
        deployment.wait(env, commit, version, deadline, reporter)
        expected = expected_from_git(repo_path, env, version, pushed=False)  # HEAD: caught up, with our commits
        report = verify(deployment.target(env), version, expected.artifact, expected.settings, deadline, reporter)
        if not report.passed:
            step(trigger, version, f"rolling {env} back after its verification failed")
            _roll_back(reporter, repo_path, deployment, deadline, env, entered, report, trigger, result)
        result.stages.append(
            Stage(env, "verified", commit if index else None, _summary(report), [c.to_dict() for c in report.checks])
        )
        previous_report = report
    return result


def _promote(
    reporter: Reporter,
    repo_path: Path,
    src: str,
    dst: str,
    version: str,
    trigger: str,
    verified: VerificationReport | None,
    result: ReleaseResult,
    deadline: Deadline,
):
    """Promote with the gates (custom ones end by ``deadline``); None when prod waits for an approval."""
    evidence = [(RELEASE_TRIGGER, trigger), *(verified.trailers() if verified else [])]
    try:
        return run_promotion(reporter, repo_path, src, dst, version, extra_trailers=evidence, deadline=deadline)
    except GateFailed as refused:
        if refused.results and all(r.name == "approval" for r in refused.results if not r.passed):
            result.stages.append(
                Stage(
                    dst,
                    "awaiting-approval",
                    None,
                    f"{dst} needs an approval of {version}: "
                    + (refused.fix or f"`gitops-lab approve --env {dst} --version {version}`")
                    + "; the release continues after it",
                )
            )
            return None
        raise


def _commit_that_set(git: Git, env: str, version: str) -> str:
    """The newest commit that put ``version`` on env's version line (the one a rollback reverts)."""
    return git.out("log", "-1", "--format=%H", "-S", f"{VERSION_LABEL}: {version}", "HEAD", "--", overlay_path(env))


def _summary(report: VerificationReport) -> str:
    return "; ".join(f"{c.name} {c.verdict}" for c in report.checks)


def _roll_back(
    reporter: Reporter,
    repo_path: Path,
    deployment: Deployment,
    deadline: Deadline,
    env: str,
    entered: str,
    report: VerificationReport,
    trigger: str,
    result: ReleaseResult,
) -> None:
    """Revert ``entered`` with the evidence, push, wait for the previous version; always raises."""
    failed = ", ".join(c.name for c in report.failed)
    reason = "verification failed: " + "; ".join(f"{c.name} ({c.summary})" for c in report.failed)
    evidence = [(ROLLBACK_REASON, reason), (ROLLED_BACK_BY, AUTOMATION), (RELEASE_TRIGGER, trigger), *report.trailers()]
    git = Git(repo_path)
    problem = report.failure().message
    before = git.head()
    try:
        with reporter.step(f"Rolling {env} back: {report.version} failed {failed}") as step:
            change = repo.revert(
                repo_path,
                env,
                entered,
                f"Roll back {env}: {report.version} failed verification ({failed})",
                evidence,
                on_retry=lambda n, why: reporter.warn(f"push attempt {n} rejected: {why}"),
            )
            step.done(change.message)
    except GitError as exc:
        if exc.unpublished is None and git.head() == before:  # Git failed before the revert was committed
            raise RollbackFailed(
                f"{problem}, and the automatic rollback could not start: {exc.message}",
                fix=f"nothing was changed; when the Git server answers, `gitops-lab rollback --env {env}` reverts it",
            ) from exc
        if exc.unpublished is None:  # git reported a failure, yet the remote has the revert
            raise RollbackFailed(
                f"{problem}; the automatic rollback {git.head()[:7]} reached the remote, but git said: {exc.message}",
                fix=f"`gitops-lab status` shows whether {env} serves it; `gitops-lab sync --env {env}` applies it",
            ) from exc
        # Publish or undo: the working copy is back where it was, the revert with its evidence is kept.
        raise RollbackFailed(
            f"{problem}, and the automatic rollback could not be pushed: {exc.message}",
            fix=f"push the revert commit with `git -C {repo_path} push {git.lab_remote() or 'origin'} "
            f"{exc.unpublished}:{BRANCH}` once the remote accepts it",
        ) from exc
    # No commit of its own: the version was already back (a rollback made by someone else); name theirs.
    rolled = change.commit or _commit_that_set(git, env, change.version)
    by = "" if change.commit else " (a rollback made meanwhile)"
    result.stages.append(Stage(env, "rolled-back", rolled, reason, [c.to_dict() for c in report.checks]))
    try:
        deployment.wait(env, rolled, change.version, deadline, reporter)
    except (WaitTimeout, EngineError, ClusterError) as exc:
        raise RollbackFailed(
            f"{problem}; the rollback {rolled[:7]} is pushed, but {env} does not serve "
            f"{change.version} again yet: {exc.message}",
            fix=f"Git is already right; when the engine is back, `gitops-lab sync --env {env}` applies it "
            "(`gitops-lab status` shows where it is)",
        ) from exc
    raise report.failure(
        f"; rolled back to {change.version} in {rolled[:7]}{by}, and {env} serves {change.version} again",
        fix=f"`gitops-lab history --env {env}` shows the rollback and its evidence",
    )


def resume(
    reporter: Reporter, repo_path: Path, deployment: Deployment, deadline: Deadline, journal: Journal
) -> ReleaseResult | None:
    """Finish the release a stopped holder of the lock left (``journal.interrupted``); None when there is none.

    Its rollback already pushed: wait until the engine serves it. Else the same
    release again (its promotions are already done, so it re-verifies and, where
    a check fails, rolls back). When dev has moved on to another version since,
    that release supersedes it, and the warning names what still runs unverified.
    """
    left = journal.interrupted
    if left is None:
        return None
    git = Git(repo_path)
    publish.check_clean(git)
    publish.catch_up(git)
    if not git.ok("merge-base", "--is-ancestor", left.trigger, "HEAD"):
        # Not in this history (the lab was set up again): nothing of it can be finished here.
        reporter.warn(f"forgetting {left.describe()}: {left.trigger[:7]} is not in {repo_path}'s history")
        journal.finished()
        return None
    reporter.warn(f"finishing {left.describe()}: it was stopped before it ended")
    rolled = rollback_of(git, left.trigger, "HEAD")
    if rolled is not None:
        env = rolled.trailer(t.ENVIRONMENT) or ENVIRONMENTS[0]
        version = rolled.trailer(t.MODEL_VERSION) or ""
        deployment.wait(env, rolled.sha, version, deadline, reporter)
        journal.finished()
        raise _rollback_applied(rolled, env, version)
    if RepoLayout(repo_path).model_version(ENVIRONMENTS[0]) != left.version:
        reporter.warn(
            f"dev no longer runs {left.version}: that release is superseded; `gitops-lab status` shows where "
            f"{left.version} still runs, `gitops-lab verify --env ENV` checks it"
        )
        journal.finished()
        return None
    return run_release(reporter, repo_path, deployment, deadline, left.trigger, journal)


def release_once(
    name: str,
    reporter: Reporter,
    repo_path: Path,
    open_deployment: Callable[[], Deployment],
    deadline: Deadline,
    command: str,
) -> ReleaseResult:
    """`gitops-lab release`: under the lab's release lock (or ReleaseInProgress naming its holder, before
    the cluster is even opened), finish what a stopped release left, else release what dev runs."""
    with release_lock(name, command, reporter) as lock:
        deployment = open_deployment()
        result = resume(reporter, repo_path, deployment, deadline, lock)
        if result is None:
            result = run_release(reporter, repo_path, deployment, deadline, journal=lock)
    return result


def _rollback_applied(rolled, env: str, version: str) -> GitOpsLabError:
    why = rolled.trailer(ROLLBACK_REASON) or "verification failed"
    return VerificationFailed(
        f"{env} was rolled back ({why}) in {rolled.sha[:7]}, and {env} serves {version} again",
        fix=f"`gitops-lab history --env {env}` shows the rollback and its evidence",
    )


# --------------------------------------------------------------------------- #
# Watch mode: a learner's push starts a release
# --------------------------------------------------------------------------- #
@dataclass
class WatchPass:
    head: str
    trigger: str | None
    result: ReleaseResult | None = None
    error: GitOpsLabError | None = None


def watch_once(
    reporter: Reporter,
    repo_path: Path,
    deployment: Deployment,
    timeout: float,
    since: str | None,
    journal: Journal | None = None,
) -> WatchPass:
    """Look at the remote once; release what a push asked for, if anything is pending.

    Only pushes count: commits the learner made in this working copy and has not
    pushed stay unpublished. While there are some, a pending release waits (the
    pass names them), since its promotions and rollbacks would publish them.
    A release a stopped holder of ``journal`` left unfinished goes first.
    """
    git = Git(repo_path)
    publish.check_clean(git)
    publish.catch_up(git, unpublished="keep")
    ref = pushed_ref(git)
    head = git.out("rev-parse", ref)
    if journal is not None and journal.interrupted is not None:
        left = journal.interrupted.trigger
        try:
            resumed = resume(reporter, repo_path, deployment, Deadline(timeout), journal)
        except (GateFailed, RollbackFailed) as exc:
            return WatchPass(git.out("rev-parse", ref), left, error=exc)
        if resumed is not None:
            return WatchPass(git.out("rev-parse", ref), left, resumed)
    trigger = find_trigger(git, ref, since)
    if trigger is None or handled(git, trigger, ref):
        return WatchPass(head, None)
    if version_at(git, ref, ENVIRONMENTS[-1]) == version_at(git, ref, ENVIRONMENTS[0]):
        return WatchPass(head, None)  # already released all the way
    local_only = git.out("log", "--format=%h %s", f"{ref}..HEAD").splitlines()
    if local_only:
        return WatchPass(
            head,
            trigger,
            error=RepoStateError(
                f"the release of {trigger[:7]} waits: {repo_path} has {len(local_only)} commit(s) that are not pushed "
                f"({local_only[0]}), and a release would publish them",
                fix="push them (`git push`) or set them aside (`git branch keep-mine && git reset --hard "
                f"{ref}`); the watch goes on by itself",
            ),
        )
    try:
        result = run_release(reporter, repo_path, deployment, Deadline(timeout), trigger, journal)
    except (GateFailed, RollbackFailed) as exc:  # VerificationFailed is a GateFailed: reported, the watch goes on
        return WatchPass(git.out("rev-parse", ref), trigger, error=exc)
    return WatchPass(git.out("rev-parse", ref), trigger, result)


def watch_start(repo_path: Path, since: str | None) -> str | None:
    """The commit a watch starts after: ``since``; else just before the last change the automation
    handled (its ``Release-Trigger`` on the remote), so a push made while no watch ran still counts
    and a release left waiting for an approval continues; None (all history) when it handled none."""
    git = Git(repo_path)
    ref = fetch_pushed(git)
    if since:
        return git.out("rev-parse", since)
    last = last_handled(git, ref)
    return git.out("rev-parse", f"{last}^") if last else None


def watch(
    reporter: Reporter,
    repo_path: Path,
    deployment: Deployment,
    timeout: float,
    interval: float,
    since: str | None,
    stop: threading.Event,
    on_pass: Callable[[WatchPass], None],
    journal: Journal | None = None,
) -> None:
    """Poll the remote every ``interval`` seconds until ``stop`` is set; a new head (the remote's,
    or the working copy's, which a learner's own commits move) gets one pass.

    A release that a gate or a verification stopped (rolled back or not) is
    reported and the watch goes on; any other error ends it.
    """
    last = None
    while not stop.is_set():
        git = Git(repo_path)
        head = (git.out("rev-parse", fetch_pushed(git)), git.head())
        if head != last:
            done = watch_once(reporter, repo_path, deployment, timeout, since, journal)
            on_pass(done)
            last = (done.head, git.head())
        stop.wait(interval)


def cluster_deployment(lab) -> Deployment:
    """The environments of a lab set up by `up`: the engine's waits, verification through the API server."""

    def wait(env: str, commit: str, version: str, deadline: Deadline, reporter: Reporter) -> None:
        # ``version`` is what the overlay names at ``commit``: converge reads it there.
        converge(lab, [env], commit, deadline, reporter)

    return Deployment(wait=wait, target=lambda env: kube_target(lab.kube, env, lab.namespace(env)))


# --------------------------------------------------------------------------- #
# `gitops-lab release status`: what the automation did (from Git) and is doing (the lock)
# --------------------------------------------------------------------------- #
def release_status(repo_path: Path, name: str, limit: int = 10) -> dict:
    """The automation's last ``limit`` promotions and rollbacks on the remote, newest first, with
    their evidence; who holds the release lock; and a release a stopped holder left unfinished."""
    git = Git(repo_path)
    ref = fetch_pushed(git)
    actions = []
    for entry in log_entries(git, ref):
        trigger = entry.trailer(RELEASE_TRIGGER)
        if trigger is None:
            continue
        actions.append(
            {
                "commit": entry.sha,
                "date": entry.date,
                "action": entry.trailer(t.ACTION),
                "environment": entry.trailer(t.ENVIRONMENT),
                "version": entry.trailer(t.MODEL_VERSION),
                "previous": entry.trailer(t.PREVIOUS_VERSION),
                "trigger": trigger,
                "subject": entry.subject,
                "reason": entry.trailer(ROLLBACK_REASON),
                "evidence": {k: v[-1] for k, v in entry.trailers.items() if k.startswith("Verify-")},
            }
        )
        if len(actions) == limit:
            break
    holder = read_holder(name)
    held = is_held(name)
    left = holder.acting if holder is not None and not held else None
    return {
        "head": git.out("rev-parse", ref),
        "lock": None
        if holder is None
        else {
            "held": held,
            "stale": not held and not holder.released,
            "pid": holder.pid,
            "host": holder.host,
            "since": holder.since,
            "command": holder.command,
            "acting": asdict(holder.acting) if holder.acting else None,
        },
        "interrupted": None
        if left is None
        else {**asdict(left), "fix": "`gitops-lab release` (or `gitops-lab release --watch`) finishes it"},
        "actions": actions,
    }

"""What the learner runs in a second terminal, for `lab solve` and `lab test`.

`watch_once` is one pass of `gitops-lab release --watch` over the pushes since
the lab's start point; `release` is `gitops-lab release`, which must reach prod;
`release_as_learner` is `gitops-lab release` whose failed verification, rolled
back, is what the step shows (the learner sees exit code 4).

On a lab set up with `up --release-automation` the pod does the watch's work,
so the learner (and these hooks) run nothing: `watch_once` waits until the pod
acted on the push, `release_as_learner` until it rolled prod back; `release`,
typed by the learner, holds the pod's Lease while it runs (waiting for it to
be free).
"""

from __future__ import annotations

import contextlib
import time

from gitops_lab.errors import GateFailed, ReleaseInProgress, WaitTimeout


def _in_cluster(ctx):
    """The cluster's client when the in-cluster automation is installed there, else None."""
    from gitops_lab.workflows.release_agent import installed

    kube = ctx.environment().kube
    return kube if installed(kube) else None


def _wait_for_the_pod(ctx, kube, rolled_back: bool) -> None:
    """Until the pod's pass over the newest push that changed dev's version ended (``rolled_back``: in a
    rollback, its revert in Git), reading Git and the pod's status as the learner would."""
    from gitops_lab.deadline import Deadline
    from gitops_lab.workflows.release import find_trigger, last_handled, rollback_of
    from gitops_lab.workflows.release_agent import agent_status

    deadline = Deadline(ctx.timeout)
    while True:
        ref = ctx.pushed(refresh=True)
        since = ctx.since()
        # The push, or, when the pod was quicker and its rollback is now dev's newest change, the push it handled.
        trigger = find_trigger(ctx.git, ref, since) or last_handled(ctx.git, f"{since}..{ref}" if since else ref)
        if trigger is None:
            raise GateFailed(
                "the release automation found no push that changed dev's version",
                fix="push a commit that sets dev's model version",
            )
        # A pass is recorded once its release ended (a rollback waited for until the engine serves it).
        passes = [p for p in (agent_status(kube) or {}).get("passes") or [] if p.get("trigger") == trigger]
        if not rolled_back and passes:
            return
        reverted = any("failed verification" in (p.get("error") or "") for p in passes)
        if rolled_back and reverted and rollback_of(ctx.git, trigger, ref) is not None:
            return
        if deadline.expired:
            raise WaitTimeout(
                f"the in-cluster release automation has not {'rolled back' if rolled_back else 'acted on'} "
                f"{trigger[:7]} within {deadline.describe()}",
                fix="`gitops-lab release status` shows what it is doing; "
                "`kubectl -n gitops-lab-release logs deploy/release-automation` its steps",
            )
        time.sleep(2)


@contextlib.contextmanager
def _lease_when_free(ctx, kube, what: str):
    """The pod's Lease, for a release typed on the host: taken once the pod's pass let go of it."""
    from gitops_lab.deadline import Deadline
    from gitops_lab.workflows.release_agent import host_claim

    deadline = Deadline(ctx.timeout)
    with contextlib.ExitStack() as stack:
        while True:
            try:
                stack.enter_context(host_claim(kube, what, ctx.reporter))
                break
            except ReleaseInProgress:
                if deadline.expired:
                    raise
                time.sleep(2)
        yield


def watch_once(ctx) -> None:
    kube = _in_cluster(ctx)
    if kube is not None:
        _wait_for_the_pod(ctx, kube, rolled_back=False)
        return
    from gitops_lab.state import DEFAULT_NAME
    from gitops_lab.workflows.release import cluster_deployment
    from gitops_lab.workflows.release import watch_once as one_pass
    from gitops_lab.workflows.release_lock import release_lock

    # Under the lab's release lock, as the learner's own watch: never two releases at once.
    with release_lock(ctx.name or DEFAULT_NAME, "gitops-lab lab solve (release automation)", ctx.reporter) as lock:
        deployment = cluster_deployment(ctx.environment())
        done = one_pass(ctx.reporter, ctx.repo, deployment, ctx.timeout, ctx.since(), lock)
    if done.trigger is None:
        raise GateFailed(
            "the release automation found no push that changed dev's version",
            fix="push a commit that sets dev's model version",
        )
    if done.error is not None and not isinstance(done.error, GateFailed):
        raise done.error


def release(ctx) -> None:
    from gitops_lab.deadline import Deadline
    from gitops_lab.state import DEFAULT_NAME
    from gitops_lab.workflows.release import cluster_deployment, release_once

    def open_deployment():
        return cluster_deployment(ctx.environment())

    name = ctx.name or DEFAULT_NAME
    kube = _in_cluster(ctx)
    claim = _lease_when_free(ctx, kube, "gitops-lab lab solve") if kube is not None else contextlib.nullcontext()
    with claim:
        result = release_once(
            name, ctx.reporter, ctx.repo, open_deployment, Deadline(ctx.timeout), "gitops-lab lab solve"
        )
    if not result.complete:
        raise GateFailed(f"the release of {result.version} did not reach prod: {result.stages[-1].summary}")


def release_as_learner(ctx) -> None:
    from gitops_lab.errors import VerificationFailed

    kube = _in_cluster(ctx)
    if kube is not None:  # the approval was a push: the pod continues the release by itself
        _wait_for_the_pod(ctx, kube, rolled_back=True)
        return
    try:
        release(ctx)
    except VerificationFailed as failed:  # rolled back: RollbackFailed would not be one
        ctx.reporter.info(failed.one_line())

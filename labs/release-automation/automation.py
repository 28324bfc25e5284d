"""What the learner runs in a second terminal, for `lab solve` and `lab test`.

`watch_once` is one pass of `gitops-lab release --watch` over the pushes since
the lab's start point; `release` is `gitops-lab release`, which must reach prod;
`release_as_learner` is `gitops-lab release` whose failed verification, rolled
back, is what the step shows (the learner sees exit code 4).
"""

from __future__ import annotations

from gitops_lab.errors import GateFailed


def watch_once(ctx) -> None:
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
    result = release_once(name, ctx.reporter, ctx.repo, open_deployment, Deadline(ctx.timeout), "gitops-lab lab solve")
    if not result.complete:
        raise GateFailed(f"the release of {result.version} did not reach prod: {result.stages[-1].summary}")


def release_as_learner(ctx) -> None:
    from gitops_lab.errors import VerificationFailed

    try:
        release(ctx)
    except VerificationFailed as failed:  # rolled back: RollbackFailed would not be one
        ctx.reporter.info(failed.one_line())

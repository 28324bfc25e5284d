"""What the learner runs in a second terminal, for `lab solve` and `lab test`.

`watch_once` is one pass of `gitops-lab release --watch` over the pushes since
the lab's start point; `release` is `gitops-lab release`, which must reach prod;
`release_as_learner` is `gitops-lab release` whose failed verification, rolled
back, is what the step shows (the learner sees exit code 4).
"""

from __future__ import annotations

from gitops_lab.errors import GateFailed


def watch_once(ctx) -> None:
    from gitops_lab.workflows.release import cluster_deployment
    from gitops_lab.workflows.release import watch_once as one_pass

    done = one_pass(ctx.reporter, ctx.repo, cluster_deployment(ctx.environment()), ctx.timeout, ctx.since())
    if done.trigger is None:
        raise GateFailed("the release automation found no push that changed dev's version",
                         fix="push a commit that sets dev's model version")
    if done.error is not None and not isinstance(done.error, GateFailed):
        raise done.error


def release(ctx) -> None:
    from gitops_lab.kube.deadline import Deadline
    from gitops_lab.workflows.release import cluster_deployment, run_release

    result = run_release(ctx.reporter, ctx.repo, cluster_deployment(ctx.environment()), Deadline(ctx.timeout))
    if not result.complete:
        raise GateFailed(f"the release of {result.version} did not reach prod: {result.stages[-1].summary}")


def release_as_learner(ctx) -> None:
    from gitops_lab.errors import VerificationFailed

    try:
        release(ctx)
    except VerificationFailed as failed:  # rolled back: RollbackFailed would not be one
        ctx.reporter.info(failed.one_line())

"""Wait until an environment really serves a commit: the engine applied it and
is healthy, and the Deployment rolled out with the expected model version."""

from __future__ import annotations

from dataclasses import dataclass

from gitops_lab.adapters.engines.base import Engine
from gitops_lab.adapters.repo.layout import DEPLOYMENT, VERSION_LABEL
from gitops_lab.errors import WaitTimeout
from gitops_lab.deadline import Deadline, explaining_a_timeout
from gitops_lab.kube.rollout import rollout_verdict
from gitops_lab.kube.wait import wait_for, warning_events
from gitops_lab.reporter import Reporter


@dataclass(frozen=True)
class Expectation:
    env: str
    namespace: str
    commit: str | None
    version: str | None


def wait_until_served(
    engine: Engine, expect: Expectation, deadline: Deadline, reporter: Reporter, request_reconcile: bool = True
) -> None:
    """Ask the engine to reconcile, then wait for all three conditions under one deadline."""
    short = expect.commit[:7] if expect.commit else "the branch head"
    what = f" running {expect.version}" if expect.version else ""
    with reporter.step(f"Waiting up to {deadline.describe()} for {expect.env} to apply {short}{what}") as step:
        if request_reconcile:
            engine.request_reconcile(expect.env, expect.commit)
        try:
            engine.wait_applied(
                expect.env, expect.commit, deadline, on_progress=lambda seen: step.update(f"{engine.name}: {seen}")
            )
            wait_for(
                engine.applier,
                "apps/v1",
                "Deployment",
                DEPLOYMENT,
                expect.namespace,
                lambda dep: rollout_verdict(dep, VERSION_LABEL if expect.version else None, expect.version),
                deadline,
                f"Deployment {expect.namespace}/{DEPLOYMENT} to roll out{what}",
                on_progress=lambda seen: step.update(f"rollout: {seen}"),
            )
            # The engine's view can lag the cluster (Argo CD reports Progressing for a
            # moment after a rollout or a self-heal): confirm it once more, so that on
            # return the engine and the Deployment agree.
            engine.wait_applied(
                expect.env, expect.commit, deadline, on_progress=lambda seen: step.update(f"{engine.name}: {seen}")
            )
        except WaitTimeout as exc:
            with explaining_a_timeout():
                events = warning_events(engine.applier, expect.namespace)
            detail = f"; latest warnings: {' | '.join(events)}" if events else ""
            raise WaitTimeout(
                f"{expect.env}: {exc.message}{detail}",
                fix=f"see `gitops-lab status` and `kubectl -n {expect.namespace} describe deployment {DEPLOYMENT}`",
            ) from exc
        step.done(f"{expect.env} serves {expect.version or short}")

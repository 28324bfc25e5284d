"""The wait that follows a pushed change: engine applied + Deployment rolled out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gitops_lab.adapters.repo.promotion import ChangeResult
from gitops_lab.cli.app import Application
from gitops_lab.reporter import Reporter


def after_push_wait(app: Application, repo: Path, wait: bool, timeout: float,
                    kubeconfig: str | None, context: str | None) -> Callable[[ChangeResult, Reporter], None] | None:
    """The hook that waits for a pushed change, or None when there is nothing to wait on."""
    saved = app.state()
    if not wait or saved is None or not saved.engine:
        return None

    def wait_for_change(result: ChangeResult, reporter: Reporter) -> None:
        from gitops_lab.kube.deadline import Deadline, current_deadline
        from gitops_lab.workflows.environment import open_environment
        from gitops_lab.workflows.rollout import Expectation, wait_until_served

        if not result.pushed:
            reporter.warn("the change was not pushed, so the engine cannot see it; not waiting")
            return
        lab = open_environment(saved, kubeconfig, context, repo)
        expect = Expectation(result.environment, lab.namespace(result.environment), result.commit, result.version)
        # The command's one deadline (set by promote and rollback) also bounded the fetch and the push.
        wait_until_served(lab.engine, expect, current_deadline() or Deadline(timeout), reporter)

    return wait_for_change

"""Convergence: ask the engine to reconcile, then wait until each environment serves what Git says.

The one owner of "reconcile and wait until served": `up`, `sync`, promote and
rollback, the lab actions, the lab runner and the classroom all call
``converge``. What an environment must serve is read from Git at the commit
(the model version its overlay names there), never from the caller.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.promotion import ChangeResult
from gitops_lab.adapters.repo.pushed import fetch_pushed, version_at
from gitops_lab.deadline import Deadline
from gitops_lab.errors import ClusterError
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.environment import LabEnvironment
from gitops_lab.workflows.rollout import Expectation, wait_until_served


def converge(
    lab: LabEnvironment, envs: Iterable[str], commit: str, deadline: Deadline, reporter: Reporter
) -> dict[str, str]:
    """Request a reconcile of each of ``envs``, then wait until each serves ``commit``.

    Served: the engine applied ``commit`` and reports it healthy, and the
    environment's Deployment rolled out with the model version the overlay names
    at ``commit``. One deadline covers every environment. Returns that version
    per environment.
    """
    chosen = list(envs)
    git = Git(lab.repo)
    versions = {env: version_at(git, commit, env) for env in chosen}
    _request_reconciles(lab, chosen, commit)
    for env in chosen:
        wait_until_served(
            lab.engine,
            Expectation(env, lab.namespace(env), commit, versions[env]),
            deadline,
            reporter,
            request_reconcile=False,
        )
    return versions


def _request_reconciles(lab: LabEnvironment, envs: list[str], commit: str) -> None:
    """Ask for every environment's reconcile at once (each is one or two API calls): the engine starts on all
    of them together instead of one after another. Each runs in a copy of this context (the command's deadline);
    the first failure is raised as it was."""
    if len(envs) < 2:
        for env in envs:
            lab.engine.request_reconcile(env, commit)
        return
    with ThreadPoolExecutor(max_workers=len(envs), thread_name_prefix="reconcile") as pool:
        asked = [pool.submit(contextvars.copy_context().run, lab.engine.request_reconcile, env, commit) for env in envs]
        for request in asked:
            request.result()


def converge_change(lab: LabEnvironment, result: ChangeResult, deadline: Deadline, reporter: Reporter) -> None:
    """After a promotion or rollback: wait until its environment serves the pushed commit (nothing for a no-op)."""
    if not result.changed:
        return
    if not result.pushed:
        reporter.warn("the change was not pushed, so the engine cannot see it; not waiting")
        return
    try:
        converge(lab, [result.environment], result.commit or "", deadline, reporter)
    except ClusterError as error:
        # The change is on the remote: say so, or the user may redo a change that is already done.
        raise ClusterError(
            f"{result.message}: {(result.commit or '')[:7]} is published on the remote, but {error.message}",
            fix=f"{error.fix}; then `gitops-lab sync --env {result.environment}` waits until the engine applies it",
        ) from error


def sync(
    lab: LabEnvironment, envs: Iterable[str], deadline: Deadline, reporter: Reporter
) -> tuple[str, dict[str, str]]:
    """Reconcile ``envs`` with the head of the pushed branch now: (that commit, the version each serves)."""
    git = Git(lab.repo)
    head = git.out("rev-parse", fetch_pushed(git))
    return head, converge(lab, envs, head, deadline, reporter)

"""`gitops-lab sync`: ask the engine to reconcile now and wait until it serves Git."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, environment_options, pass_app


@click.command("sync")
@click.option("--env", "envs", multiple=True, type=click.Choice(ENVIRONMENTS),
              help="Environment to sync; repeat for more. Default: all three.")
@environment_options
@pass_app
def command(app: Application, envs: tuple[str, ...], timeout: float, kubeconfig: str | None, context: str | None,
            repo: str | None, output: str) -> None:
    """Reconcile environments now: the engine applies the pushed branch head, undoing hand edits.

    Argo CD is asked for a hard refresh, Flux for a reconcile of the source and
    the Kustomization. Then it waits until the engine applied the head of the
    pushed branch, reports it healthy, and the Deployment rolled out with the
    model version and replicas Git names.

    \b
    Examples:
      gitops-lab sync --env prod
      gitops-lab sync                      # dev, staging and prod
    """
    from gitops_lab.kube.deadline import command_deadline

    with command_deadline(timeout) as deadline:
        commit, served = _sync(app, envs, deadline, kubeconfig, context, repo, output)
    app.emit(output, {"commit": commit, "environments": served},
             f"Synced {', '.join(f'{e} ({v})' for e, v in served.items())} to {commit[:7]}.")


def _sync(app: Application, envs: tuple[str, ...], deadline, kubeconfig: str | None, context: str | None,
          repo: str | None, output: str) -> tuple[str, dict[str, str]]:
    """Fetch the branch head, ask for a reconcile, wait until each environment serves it."""
    from gitops_lab.adapters.repo.git import Git
    from gitops_lab.adapters.repo.layout import overlay_path, version_in_text
    from gitops_lab.adapters.repo.seed import BRANCH
    from gitops_lab.state import load_state
    from gitops_lab.workflows.environment import open_environment
    from gitops_lab.workflows.rollout import Expectation, wait_until_served

    state = load_state(app.name)
    path = app.repo_path(repo)
    git = Git(path)
    ref = "HEAD"
    if git.remote_url():
        git.run("fetch", "--quiet", "origin", BRANCH)
        ref = f"origin/{BRANCH}"
    head = git.out("rev-parse", ref)
    lab = open_environment(state, kubeconfig, context, path)
    reporter = app.reporter(output)
    chosen = list(envs) or list(ENVIRONMENTS)
    for env in chosen:
        lab.engine.request_reconcile(env)
    served = {}
    for env in chosen:
        version = version_in_text(git.out("show", f"{head}:{overlay_path(env)}"), overlay_path(env))
        wait_until_served(lab.engine, Expectation(env, lab.namespace(env), head, version), deadline, reporter,
                          request_reconcile=False)
        served[env] = version
    return head, served

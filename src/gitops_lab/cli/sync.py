"""`gitops-lab sync`: ask the engine to reconcile now and wait until it serves Git."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, environment_options, pass_app


@click.command("sync")
@click.option(
    "--env",
    "envs",
    multiple=True,
    type=click.Choice(ENVIRONMENTS),
    help="Environment to sync; repeat for more. Default: all three.",
)
@environment_options
@pass_app
def command(
    app: Application,
    envs: tuple[str, ...],
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
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
    from gitops_lab.deadline import command_deadline
    from gitops_lab.state import load_state
    from gitops_lab.workflows.converge import sync
    from gitops_lab.workflows.environment import open_environment

    lab = open_environment(load_state(app.name), kubeconfig, context, app.repo_path(repo))
    with command_deadline(timeout) as deadline:
        commit, served = sync(lab, envs or ENVIRONMENTS, deadline, app.reporter(output))
    app.emit(
        output,
        {"commit": commit, "environments": served},
        f"Synced {', '.join(f'{e} ({v})' for e, v in served.items())} to {commit[:7]}.",
    )

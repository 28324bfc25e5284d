"""`gitops-lab rollback`: undo an environment's last promotion, keeping history."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, environment_options, pass_app


@click.command("rollback")
@click.option(
    "--env", required=True, type=click.Choice(ENVIRONMENTS), help="Environment to roll back (dev, staging, prod)."
)
@click.option("--to", "to", metavar="VERSION", help="Go back to this version, which the environment ran before.")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the engine applied the change and the Deployment rolled out.",
)
@environment_options
@pass_app
def command(
    app: Application,
    env: str,
    to: str | None,
    wait: bool,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Roll an environment back with a new commit; history is never rewritten.

    Without --to, the environment's last change of version that is still in
    effect is undone: a promotion, or a hand edit, read from the overlay's own
    history (see `gitops-lab history`). A change already undone (by a rollback,
    a plain `git revert` or an edit back) is skipped, and a lab reset is where
    it stops. With --to, the environment moves to a version it ran before.
    Rollback runs no validation gates and needs no approval: going back must
    always be possible. On a forge (`repo init --forge-url`), an environment
    that needs a review goes back through a pull request that is merged at
    once: by the learner when a reviewer approved it already, else by the lab's
    admin account past the branch rule, which the merge records (docs/forge.md).

    Then, when `up` set up an engine, it asks the engine to reconcile and waits
    until the engine applied the commit and reports it healthy, and the
    environment's Deployment rolled out with the new model version.
    --no-wait stops after the push.

    \b
    Examples:
      gitops-lab rollback --env prod
      gitops-lab rollback --env prod --to v1
    """
    from gitops_lab.deadline import command_deadline
    from gitops_lab.workflows.environment import open_if_set_up
    from gitops_lab.workflows.promotion import run_rollback
    from gitops_lab.workflows.pull_request import lab_forge

    path = app.repo_path(repo)
    forge = lab_forge(app.state(), path)
    environment = open_if_set_up(app.state(), kubeconfig, context, path) if wait else None
    with command_deadline(timeout) as deadline:
        result = run_rollback(
            app.reporter(output), path, env, to, environment=environment, deadline=deadline, forge=forge
        )
    app.emit(output, result.to_dict(), result.message)

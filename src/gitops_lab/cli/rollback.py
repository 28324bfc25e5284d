"""`gitops-lab rollback`: undo an environment's last promotion, keeping history."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, output_option, pass_app, repo_option


@click.command("rollback")
@click.option("--env", required=True, type=click.Choice(ENVIRONMENTS), help="Environment to roll back (dev, staging, prod).")
@click.option("--to", "to", metavar="VERSION", help="Go back to this version, which the environment ran before.")
@repo_option
@output_option
@pass_app
def command(app: Application, env: str, to: str | None, repo: str | None, output: str) -> None:
    """Roll an environment back with a new commit; history is never rewritten.

    Without --to, the environment's last promotion is reverted (`git revert`).
    With --to, the environment moves to a version it ran before.

    \b
    Examples:
      gitops-lab rollback --env prod
      gitops-lab rollback --env prod --to v1
    """
    from gitops_lab.workflows.promotion import run_rollback

    result = run_rollback(app.reporter(output), app.repo_path(repo), env, to)
    app.emit(output, result.to_dict(), result.message)

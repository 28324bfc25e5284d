"""The `gitops-lab` command group. Subcommands live one per module."""

from __future__ import annotations

import click

from gitops_lab import __version__
from gitops_lab.cli.app import Application, GitOpsLabGroup
from gitops_lab.state import DEFAULT_NAME, check_name


@click.group(cls=GitOpsLabGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gitops-lab")
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and extra detail on errors.")
@click.option(
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    envvar="GITOPS_LAB_NAME",
    help="Name of the lab environment (its kind cluster and saved state): lowercase letters, digits and '-'.",
)
@click.pass_context
def main(ctx: click.Context, verbose: bool, name: str) -> None:
    """GitOps labs for CI/CD of machine-learning models.

    Seeds a Git repository with dev, staging and prod overlays of a model
    server, and promotes and rolls back model versions through Git.

    \b
    Examples:
      gitops-lab repo init ./lab-repo --remote http://localhost:8180/lab.git
      gitops-lab promote --from dev --to staging
      gitops-lab rollback --env prod
      gitops-lab history --env prod --output json
    """
    ctx.obj = Application(verbose=verbose, name=check_name(name))
    from gitops_lab.adapters.repo.git import authenticated

    ctx.with_resource(authenticated(ctx.obj.git_auth()))


def _register() -> None:
    from gitops_lab.cli import (
        approve,
        classroom,
        credentials,
        doctor,
        down,
        gate,
        history,
        images,
        lab,
        promote,
        release,
        repo,
        rollback,
        status,
        sync,
        up,
        verify,
    )

    for module in (
        up,
        down,
        status,
        repo,
        promote,
        rollback,
        history,
        gate,
        approve,
        doctor,
        images,
        credentials,
        sync,
        lab,
        verify,
        release,
    ):
        main.add_command(module.command)
    main.add_command(classroom.group)


_register()

"""`gitops-lab history`: an environment's promotions and rollbacks."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, output_option, pass_app, repo_option
from gitops_lab.cli.output import format_table


@click.command("history")
@click.option("--env", required=True, type=click.Choice(ENVIRONMENTS), help="Environment to show (dev, staging, prod).")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many entries.")
@repo_option
@output_option
@pass_app
def command(app: Application, env: str, limit: int | None, repo: str | None, output: str) -> None:
    """Show every change of an environment's model version, newest first.

    Read from the overlay's own Git history: gitops-lab's promotions,
    rollbacks, approvals and lab resets with their trailers, and any other
    commit that changed the version (a hand edit, a plain `git revert`) as
    `manual`, with its author and subject.

    \b
    Examples:
      gitops-lab history --env prod
      gitops-lab history --env prod --output json
    """
    from gitops_lab.labs import observations

    entries = observations.read_history(app.name, app.repo_path(repo), env)[:limit]
    rows = [(e.commit[:7], e.date[:19].replace("T", " "), e.action, _change(e), e.author, e.subject) for e in entries]
    header = ("COMMIT", "DATE", "ACTION", "VERSION", "AUTHOR", "SUBJECT")
    app.emit(output, [e.to_dict() for e in entries], format_table(header, rows))


def _change(entry) -> str:
    return f"{entry.previous} -> {entry.version}" if entry.previous else entry.version

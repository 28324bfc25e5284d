"""`gitops-lab history`: an environment's promotions and rollbacks."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, output_option, pass_app, repo_option
from gitops_lab.cli.output import format_table


# Reading the pull requests of a lab's forge: a few API calls each.
FORGE_SECONDS = 60.0


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
    `manual`, with its author and subject. On a lab with a forge (`repo init
    --forge-url`), a promotion merged through a pull request shows its number
    and approvers, read from the forge.

    \b
    Examples:
      gitops-lab history --env prod
      gitops-lab history --env prod --output json
    """
    from gitops_lab.deadline import command_deadline
    from gitops_lab.workflows import observed, pull_request

    path = app.repo_path(repo)
    entries = observed.read_history(app.name, path, env)[:limit]
    rows = [(e.commit[:7], e.date[:19].replace("T", " "), e.action, _change(e), e.author, e.subject) for e in entries]
    header = ("COMMIT", "DATE", "ACTION", "VERSION", "AUTHOR", "SUBJECT")
    forge = pull_request.lab_forge(app.state(), path)
    if forge is None:
        app.emit(output, [e.to_dict() for e in entries], format_table(header, rows))
        return
    with command_deadline(FORGE_SECONDS):
        prs = pull_request.reviewed(forge, entries)
    data, wide = [], []
    for row, e in zip(rows, entries):
        pr = prs.get(e.commit)
        wide.append((*row, _reviewed(pr) if pr else ""))
        data.append({**e.to_dict(), "pull_request": pull_request.described(pr) if pr else None})
    app.emit(output, data, format_table((*header, "PULL REQUEST"), wide))


def _reviewed(pr) -> str:
    if not pr.approvers and pr.merged_by:
        return f"#{pr.number} merged by {pr.merged_by} without review"  # an emergency rollback, past the rule
    return f"#{pr.number} approved by {', '.join(pr.approvers) or 'nobody'}"


def _change(entry) -> str:
    return f"{entry.previous} -> {entry.version}" if entry.previous else entry.version

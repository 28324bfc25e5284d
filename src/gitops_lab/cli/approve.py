"""`gitops-lab approve`: record an approval to promote one version to one environment."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, output_option, pass_app, repo_option, timeout_option

GIT_TIMEOUT_HELP = "One deadline for the whole command: every fetch and push in it."


@click.command("approve")
@click.option("--env", required=True, type=click.Choice(ENVIRONMENTS), help="Environment the approval is for.")
@click.option("--version", required=True, metavar="VERSION", help="The exact model version approved.")
@click.option(
    "--by",
    metavar="'NAME <EMAIL>'",
    help="Who approves: the Git identity the approval commit is authored by (a bare NAME keeps your "
    "email). Default: your git user.name and user.email in the working copy.",
)
@click.option("--note", metavar="TEXT", help="Why: goes into the approval commit's message body.")
@repo_option
@timeout_option(default=120, help=GIT_TIMEOUT_HELP)
@output_option
@pass_app
def command(
    app: Application,
    env: str,
    version: str,
    by: str | None,
    note: str | None,
    repo: str | None,
    timeout: float,
    output: str,
) -> None:
    """Approve promoting a model version to an environment, as one pushed commit.

    The commit changes no file; its author is the approver and its trailers
    (Gitops-Lab-Action: approve, Environment, Model-Version, Approved-By) are
    the record the approval gate looks for. An approval counts only if it was
    made after the environment's last change of version (a promotion, a
    rollback, a reset or a hand edit), so one approval lets one promotion
    through. gates.yaml may limit who approves (approval.approvers, matched
    against the author's name or email) and, for prod by default
    (approval.separate_duties), requires an approver other than the promoter.
    Approving again what the same person already approved does nothing.

    \b
    Examples:
      gitops-lab approve --env prod --version v2
      gitops-lab approve --env prod --version v2 --by "Alice <alice@example.com>" --note "A/B test looked good"
    """
    from gitops_lab.adapters.repo.approval import record_approval
    from gitops_lab.kube.deadline import command_deadline

    reporter = app.reporter(output)
    with command_deadline(timeout):
        result = record_approval(
            app.repo_path(repo),
            env,
            version,
            by,
            note,
            on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
        )
    app.emit(output, result.to_dict(), result.message)

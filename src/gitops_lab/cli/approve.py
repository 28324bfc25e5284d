"""`gitops-lab approve`: record an approval to promote one version to one environment."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, PlainText, output_option, pass_app, repo_option, timeout_option

GIT_TIMEOUT_HELP = "One deadline for the whole command: every fetch and push in it."


@click.command("approve")
@click.option("--env", required=True, type=click.Choice(ENVIRONMENTS), help="Environment the approval is for.")
@click.option("--version", required=True, metavar="VERSION", help="The exact model version approved.")
@click.option(
    "--by",
    metavar="'NAME <EMAIL>'",
    type=PlainText(),
    help="Who approves: the Git identity the approval commit is authored by (a bare NAME keeps your "
    "email). Default: your git user.name and user.email in the working copy.",
)
@click.option(
    "--note", metavar="TEXT", type=PlainText(lines=True), help="Why: goes into the approval commit's message body."
)
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
    Approving again what the same person already approved does nothing. An
    approver outside approval.approvers is refused at once (the approval could
    never count); approving yourself where duties are separate is warned about.

    On a lab whose remote is a forge (`repo init --forge-url`), approving an
    environment promoted by pull request (prod by default) is an approving
    review of that pull request instead, by the account --by names in the
    forge credentials file. An account outside the branch rule's approvers is
    refused, and Gitea refuses the pull request's author. No commit is made:
    trailer approvals do not count there.

    \b
    Examples:
      gitops-lab approve --env prod --version v2
      gitops-lab approve --env prod --version v2 --by "Alice <alice@example.com>" --note "A/B test looked good"
    """
    from gitops_lab.adapters.repo.approval import record_approval
    from gitops_lab.deadline import command_deadline
    from gitops_lab.workflows import pull_request

    from gitops_lab.gates.config import load_config

    reporter = app.reporter(output)
    path = app.repo_path(repo)
    forge = pull_request.lab_forge(app.state(), path)
    if forge is not None and pull_request.needs_review(load_config(path).required_for(env)):
        with command_deadline(timeout):
            review = pull_request.approve(forge, env, version, by, note)
        app.emit(output, review.to_dict(), review.message)
        return
    with command_deadline(timeout):
        result = record_approval(
            path,
            env,
            version,
            by,
            note,
            on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
            rules=lambda: load_config(path).settings.get("approval") or {},
            warn=reporter.warn,
        )
    app.emit(output, result.to_dict(), result.message)

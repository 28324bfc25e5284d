"""`gitops-lab promote`: move a model version to the next environment through Git."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS, previous_environment
from gitops_lab.cli.app import Application, environment_options, pass_app


@click.command("promote")
@click.option(
    "--from",
    "src",
    type=click.Choice(ENVIRONMENTS),
    help="Environment to take the version from. Default: the one before --to.",
)
@click.option(
    "--to",
    "dst",
    type=click.Choice(ENVIRONMENTS),
    required=True,
    help="Environment to promote to (dev, staging, prod).",
)
@click.option("--version", metavar="VERSION", help="Promote this model version instead of --from's.")
@click.option(
    "--skip-gate",
    "skip_gates",
    multiple=True,
    metavar="GATE",
    help="Do not run this required gate (repeatable). Only gates listed as skippable in gates.yaml; "
    "recorded in the commit as `Gate-<Name>: skipped by <you>`.",
)
@click.option(
    "--rerun-gates",
    is_flag=True,
    help="Run every gate, even one that already passed on the same inputs (by default such a verdict is "
    "reused, and the output says so).",
)
@click.option(
    "--merge",
    is_flag=True,
    help="On a forge: merge the promotion's pull request now; a missing approval is an error (exit 4) "
    "instead of a wait.",
)
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
    src: str | None,
    dst: str,
    version: str | None,
    skip_gates: tuple[str, ...],
    rerun_gates: bool,
    merge: bool,
    wait: bool,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Promote a model version to an environment, as one pushed commit.

    First the validation gates that gates.yaml (in the lab repository) requires
    for the destination run: by default data-quality, model-eval and policy for
    staging, plus approval for prod (record one with `gitops-lab approve`). If
    any gate fails, nothing changes and the command exits with code 4, naming
    the failing gates; `gitops-lab gate run` shows their details.

    The commit changes one line, the environment's model version, and carries
    trailers (Promoted-From, Model-Version, Previous-Version, and one
    Gate-<Name> verdict per gate) that `history` reads back. Promoting the
    version an environment already runs does nothing. Rollback runs no gates:
    rolling back must always be possible. dev, the first environment, has no
    environment before it: `--to dev --version V` sets its version (a commit
    "Set dev to V" without Promoted-From), behind dev's gates if any.

    Then, when `up` set up an engine, it asks the engine to reconcile and waits
    until the engine applied the commit and reports it healthy, and the
    environment's Deployment rolled out with the new model version.
    --no-wait stops after the push.

    A gate that already passed on the same inputs (the same commit's content,
    the same gates.yaml section, the same tools) is not run again: its
    recorded verdict is reused and the output says "reused". --rerun-gates
    runs every gate.

    On a lab whose remote is a forge (`repo init --forge-url`), a destination
    that needs an approval (prod by default) is promoted by pull request: the
    same commit goes to the branch promote/ENV-VERSION, the pull request is
    opened (its URL printed, the gates' verdicts posted as commit statuses on
    its head) and the command exits 0, waiting for review. `gitops-lab approve
    --by REVIEWER` approves it; running the same promote again (or with
    --merge) merges it once approved, then waits as above.

    \b
    Examples:
      gitops-lab promote --from dev --to staging
      gitops-lab approve --env prod --version v2 --by "Alice <alice@example.com>" && gitops-lab promote --to prod
      gitops-lab promote --from dev --to staging --version v2
      gitops-lab promote --to dev --version v3      # dev, the first environment: set its version
      gitops-lab promote --to staging --skip-gate policy   # recorded in the commit
    """
    from gitops_lab.errors import GateFailed
    from gitops_lab.deadline import command_deadline
    from gitops_lab import observations
    from gitops_lab.workflows.environment import open_if_set_up
    from gitops_lab.workflows.promotion import run_promotion
    from gitops_lab.workflows.pull_request import lab_forge

    source = src or previous_environment(dst) or dst
    path = app.repo_path(repo)
    forge = lab_forge(app.state(), path)
    environment = open_if_set_up(app.state(), kubeconfig, context, path) if wait else None
    try:
        with command_deadline(timeout) as deadline:
            result = run_promotion(
                app.reporter(output),
                path,
                source,
                dst,
                version,
                environment=environment,
                deadline=deadline,
                skip_gates=skip_gates,
                rerun_gates=rerun_gates,
                forge=forge,
                merge=merge,
            )
    except GateFailed as refused:
        observations.refused_promotion(app.name, source, dst, refused)
        raise
    app.emit(output, result.to_dict(), result.message)

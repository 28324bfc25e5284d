"""`gitops-lab status`: what each environment runs, per the engine and the cluster."""

from __future__ import annotations

import sys

import click

from gitops_lab.cli.app import Application, context_option, kubeconfig_option, output_option, pass_app, timeout_option
from gitops_lab.cli.output import format_table


@click.command("status")
@kubeconfig_option
@context_option
@output_option
@timeout_option(default=60, help="One deadline for every call to the cluster (an API server that never answers).")
@pass_app
def command(app: Application, kubeconfig: str | None, context: str | None, output: str, timeout: float) -> None:
    """Show one row per environment: engine, commit, sync and health, model version, replicas.

    Exits 1 when an environment is not synced, healthy and fully ready.

    \b
    Examples:
      gitops-lab status
      gitops-lab status --output json | jq '.[] | select(.ok | not)'
    """
    from gitops_lab import observations
    from gitops_lab.state import load_state
    from gitops_lab.workflows.environment import open_environment
    from gitops_lab.workflows.status import environment_reports

    from gitops_lab.deadline import command_deadline

    with command_deadline(timeout):
        lab = open_environment(load_state(app.name), kubeconfig, context)
        reports = environment_reports(lab)
    observations.status_seen(app.name, reports)
    rows = [
        (
            r.environment,
            r.engine,
            (r.commit or "-")[:7],
            r.sync,
            r.health,
            r.version or "-",
            f"{r.replicas_ready}/{r.replicas_desired}",
            r.message if not r.ok else "",
        )
        for r in reports
    ]
    header = ("ENV", "ENGINE", "COMMIT", "SYNC", "HEALTH", "VERSION", "READY", "MESSAGE")
    app.emit(output, [r.to_dict() for r in reports], format_table(header, rows))
    if not all(r.ok for r in reports):
        sys.exit(1)

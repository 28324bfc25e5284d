"""`gitops-lab gate run`: run the validation gates for a promotion, without promoting."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, output_option, pass_app, repo_option, timeout_option
from gitops_lab.gates.config import GATES


@click.group("gate")
def command() -> None:
    """Validation gates: data quality, model evaluation, policy, secret scan, approval, and your own.

    gates.yaml at the root of the lab repository says which gates each
    environment requires and their thresholds, and declares custom gates
    (commands of your own, under `custom:`); see docs/gates.md.

    \b
    Examples:
      gitops-lab gate run --to staging
      gitops-lab gate run --to staging --version v3 --output json
    """


@command.command("run")
@click.option("--to", "dst", type=click.Choice(ENVIRONMENTS), required=True, help="Destination environment.")
@click.option(
    "--from",
    "src",
    type=click.Choice(ENVIRONMENTS),
    help="Environment the version comes from. Default: the one before --to.",
)
@click.option("--version", metavar="VERSION", help="Candidate model version. Default: the one --from runs.")
@click.option(
    "--gate",
    "gates",
    multiple=True,
    metavar="GATE",
    help=f"Run only this gate (repeatable): {', '.join(GATES)} or a custom gate gates.yaml declares. "
    "Default: the gates gates.yaml requires for --to.",
)
@click.option(
    "--custom",
    "with_custom",
    is_flag=True,
    help="With --gate: also run the custom gates gates.yaml requires for --to (the pipeline's evaluation stage).",
)
@timeout_option(default=300, help="One deadline for the whole run: a custom gate still running then fails.")
@repo_option
@output_option
@pass_app
def run(
    app: Application,
    dst: str,
    src: str | None,
    version: str | None,
    gates: tuple[str, ...],
    with_custom: bool,
    timeout: float,
    repo: str | None,
    output: str,
) -> None:
    """Run the gates a promotion would run, and show each verdict.

    Reads the working copy as it is (uncommitted edits to gates.yaml or an
    overlay included) and changes nothing. Exits 0 when every gate passes and
    4 when any fails; failing gates list what they found.

    \b
    Examples:
      gitops-lab gate run --to staging                     # dev's version
      gitops-lab gate run --to staging --version v3
      gitops-lab gate run --to prod --gate approval
      gitops-lab gate run --to prod --output json
      gitops-lab gate run --to staging --gate model-eval --custom
    """
    from gitops_lab.adapters.repo.layout import RepoLayout, previous_environment
    from gitops_lab.errors import GateFailed, UsageError
    from gitops_lab.gates.runner import advice
    from gitops_lab.deadline import command_deadline
    from gitops_lab.workflows import observed

    path = app.repo_path(repo)
    source = src or previous_environment(dst) or dst
    layout = RepoLayout(path)
    layout.check_env(source)
    candidate = layout.check_version(version or layout.model_version(source))
    if with_custom and not gates:
        raise UsageError("--custom adds to the gates --gate names", fix="add --gate NAME, or drop --custom")
    with command_deadline(timeout):
        results = observed.gate_run(
            app.name, path, source, dst, candidate, only=list(gates) or None, with_custom=with_custom
        )
    failed = [r for r in results if not r.passed]
    data = {
        "from": source,
        "to": dst,
        "version": candidate,
        "passed": not failed,
        "gates": [r.to_dict() for r in results],
    }
    app.emit(output, data, format_results(source, dst, candidate, results))
    if failed:
        raise GateFailed(
            f"{candidate} from {source} to {dst} fails {len(failed)} gate{'s' if len(failed) != 1 else ''}: "
            + ", ".join(r.name for r in failed),
            fix=f"the lines above say what each found; {advice(results, source, dst, candidate)}",
            results=results,
            version=candidate,
        )


def format_results(src: str, dst: str, version: str, results: list) -> str:
    """A GATE / VERDICT / SUMMARY table; failing gates are followed by what failed."""
    from gitops_lab.cli.output import verdict_table

    if not results:
        return f"{dst} requires no gates (gates.yaml); {version} from {src} may be promoted"
    return verdict_table(results, "GATE")

"""`gitops-lab gate run`: run the validation gates for a promotion, without promoting."""

from __future__ import annotations

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, output_option, pass_app, repo_option
from gitops_lab.gates.config import GATES


@click.group("gate")
def command() -> None:
    """Validation gates: data quality, model evaluation, policy, approval.

    gates.yaml at the root of the lab repository says which gates each
    environment requires and their thresholds; see docs/gates.md.

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
    type=click.Choice(GATES),
    help="Run only this gate (repeatable). Default: the gates gates.yaml requires for --to.",
)
@repo_option
@output_option
@pass_app
def run(
    app: Application,
    dst: str,
    src: str | None,
    version: str | None,
    gates: tuple[str, ...],
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
    """
    from gitops_lab.adapters.repo.layout import RepoLayout, previous_environment
    from gitops_lab.errors import GateFailed
    from gitops_lab.gates.runner import advice
    from gitops_lab.labs import observations

    path = app.repo_path(repo)
    source = src or previous_environment(dst) or dst
    layout = RepoLayout(path)
    layout.check_env(source)
    candidate = layout.check_version(version or layout.model_version(source))
    results = observations.gate_run(app.name, path, source, dst, candidate, only=list(gates) or None)
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
    if not results:
        return f"{dst} requires no gates (gates.yaml); {version} from {src} may be promoted"
    return verdict_table(results, "GATE")


def verdict_table(results: list, first_column: str) -> str:
    """A <first_column> / VERDICT / SUMMARY table, each failed row followed by what failed."""
    from gitops_lab.cli.output import format_table

    rows = [(r.name, r.verdict, r.summary) for r in results]
    lines = [format_table((first_column, "VERDICT", "SUMMARY"), rows)]
    for r in results:
        shown = [d for d in r.details if d.startswith("warn: ") or (not r.passed and d.startswith("fail: "))]
        if shown:
            lines.append(f"\n{r.name}:")
            lines.extend(f"  {d}" for d in shown)
    return "\n".join(lines)

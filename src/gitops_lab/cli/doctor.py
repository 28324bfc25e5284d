"""`gitops-lab doctor`: can this machine run the lab? One line per check, a fix for each problem."""

from __future__ import annotations

import sys

import click

from gitops_lab.cli.app import Application, output_option, pass_app
from gitops_lab.reporter import CROSS, TICK

MARKS = {"ok": TICK, "warning": "!", "blocking": CROSS, "skipped": "-"}


@click.command("doctor")
@output_option
@pass_app
def command(app: Application, output: str) -> None:
    """Check Docker, resources, cgroups, inotify limits, ports, kind, CPU and disk.

    Prints a fix for each problem. Exits 1 when something would stop `up`,
    0 when there are only warnings. Changes nothing.

    \b
    Examples:
      gitops-lab doctor
      gitops-lab doctor --output json
    """
    from gitops_lab.workflows.doctor import doctor

    report = doctor(app.name)
    checks, blocking, warnings = report.checks, report.blocking, report.warnings
    lines = []
    width = max(len(c.name) for c in checks)
    for c in checks:
        state = "skipped" if c.skipped else "ok" if c.ok else c.severity
        lines.append(f"{MARKS[state]} {c.name.ljust(width)}  {c.detail}")
        if not c.ok and not c.skipped and c.fix:
            lines.append(f"  {' ' * width}  fix: {c.fix}")
    if blocking:
        lines.append(f"\n{len(blocking)} problem(s) would stop `gitops-lab up`.")
    elif warnings:
        lines.append(f"\nReady for `gitops-lab up`, with {len(warnings)} warning(s).")
    else:
        lines.append("\nReady for `gitops-lab up`.")
    app.emit(output, report.to_dict(), "\n".join(lines))
    if blocking:
        sys.exit(1)

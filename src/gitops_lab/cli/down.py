"""`gitops-lab down`: tear the lab environment down, keeping a backup of its repository."""

from __future__ import annotations

import click

from gitops_lab.cli.app import Application, output_option, pass_app


@click.command("down")
@output_option
@pass_app
def command(app: Application, output: str) -> None:
    """Delete the kind cluster and the local state, after backing up the repository.

    The backup (a git bundle with every branch, tag and backup ref, and any
    uncommitted work) stays in the state folder; `git clone FILE.bundle`
    restores it. Works when the cluster is already gone. On --provider
    existing, the cluster itself is left alone. While a class lives in the
    environment, `class delete` comes first (it bundles every learner's
    repository).

    \b
    Examples:
      gitops-lab down
      gitops-lab --name class-a down --output json
    """
    from gitops_lab.classroom.record import refuse_while_class_exists
    from gitops_lab.errors import UsageError
    from gitops_lab.workflows.down import down

    refuse_while_class_exists(app.name)
    try:
        state, problem = app.state(), None
    except UsageError as exc:  # a damaged state file must not stop the clean-up
        state, problem = None, exc.message
    result = down(state, app.name, app.reporter(output), state_problem=problem)
    lines = [f"The lab environment {app.name!r} is down."]
    if result.backup:
        lines.append(f"  Repository backup: {result.backup} (restore with `git clone {result.backup} lab-repo`)")
    lines += [f"  Note: {note}" for note in result.notes]
    app.emit(output, result.to_dict(), "\n".join(lines))

"""`gitops-lab repo`: create and inspect the lab's Git working copy."""

from __future__ import annotations

import click

from gitops_lab.cli.app import Application, output_option, pass_app, timeout_option


@click.group("repo")
def command() -> None:
    """Create and manage the lab's Git working copy.

    The remote must exist first: an empty bare repository (`git init --bare`)
    or an empty repository on a Git server.

    \b
    Examples:
      git init --bare /tmp/tour/lab.git
      gitops-lab repo init ./lab-repo --remote /tmp/tour/lab.git
      gitops-lab repo init ./lab-repo --remote http://localhost:8180/lab.git
    """


@command.command("init")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--remote", metavar="URL", help="Bare Git remote to push to (http(s), ssh or a local path).")
@timeout_option(default=120, help="One deadline for the whole command: every clone, fetch and push in it.")
@output_option
@pass_app
def init(app: Application, path: str, remote: str | None, timeout: float, output: str) -> None:
    """Seed a working copy at PATH from the template, or reuse one.

    With --remote (an existing, empty repository: `git init --bare PATH`), the
    seed is pushed there; if the remote already holds the lab repository it is
    cloned instead. Running it again changes nothing, or publishes a seed an
    earlier run could not push. A local path is stored as an absolute path.

    \b
    Examples:
      gitops-lab repo init ./lab-repo
      gitops-lab repo init ./lab-repo --remote /tmp/tour/lab.git     # made with `git init --bare`
      gitops-lab repo init ./lab-repo --remote http://localhost:8180/lab.git
    """
    from gitops_lab.adapters.repo import init_working_copy
    from gitops_lab.kube.deadline import command_deadline
    from gitops_lab.state import EnvironmentState

    saved = app.state() or EnvironmentState(name=app.name)
    reporter = app.reporter(output)
    with command_deadline(timeout), reporter.step(f"Preparing the lab repository at {path}") as step:
        result = init_working_copy(path, remote)
        step.done(result.action)
    saved.repo_path = str(result.path)
    saved.remote_url = result.remote
    saved.save()
    verb = {"seeded": "Seeded", "cloned": "Cloned", "reused": "Reused"}[result.action]
    text = f"{verb} the lab repository at {result.path} ({result.commit[:7]})"
    if result.remote:
        text += f", remote {result.remote}"
    if not result.changed:
        text += "; nothing changed"
    app.emit(
        output,
        {
            "path": str(result.path),
            "action": result.action,
            "commit": result.commit,
            "remote": result.remote,
            "changed": result.changed,
        },
        text,
    )

"""`gitops-lab credentials`: the Git credentials of the lab's own Git server."""

from __future__ import annotations

import click

from gitops_lab.cli.app import Application, output_option, pass_app


@click.command("credentials")
@output_option
@pass_app
def command(app: Application, output: str) -> None:
    """Print the learner's Git username and password for the lab's Git server (kind).

    They are generated per environment and kept in the state folder (mode 0600);
    nothing else prints them.

    \b
    Examples:
      gitops-lab credentials
      git clone http://localhost:8180/lab.git    # then enter them when asked
    """
    from gitops_lab.adapters.gitserver.incluster import credentials_path, load_or_create_credentials
    from gitops_lab.errors import NotFound

    if not credentials_path(app.name).is_file():
        raise NotFound(
            f"the environment {app.name!r} has no Git server credentials",
            fix="they exist after `gitops-lab up` on kind; with --provider existing use your own",
        )
    writer = load_or_create_credentials(app.name).writer
    app.emit(
        output,
        {"username": writer.username, "password": writer.password},
        f"username: {writer.username}\npassword: {writer.password}",
    )

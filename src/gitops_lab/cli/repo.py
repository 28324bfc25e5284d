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
@click.option(
    "--platform-remote",
    metavar="URL",
    help="An empty repository to seed the platform repository (ml-platform-pipelines, tag v1.0.0) into.",
)
@click.option(
    "--forge-url",
    metavar="URL",
    help="The forge (Gitea) --remote is on, e.g. http://localhost:3000: prod is then promoted by pull request.",
)
@click.option(
    "--forge-credentials",
    type=click.Path(dir_okay=False, exists=True),
    help="The accounts file the forge was seeded with (forge-credentials.json); needed with --forge-url.",
)
@timeout_option(default=120, help="One deadline for the whole command: every clone, fetch and push in it.")
@output_option
@pass_app
def init(
    app: Application,
    path: str,
    remote: str | None,
    platform_remote: str | None,
    forge_url: str | None,
    forge_credentials: str | None,
    timeout: float,
    output: str,
) -> None:
    """Seed a working copy at PATH from the template, or reuse one.

    With --remote (an existing, empty repository: `git init --bare PATH`), the
    seed is pushed there; if the remote already holds the lab repository it is
    cloned instead. Running it again changes nothing, or publishes a seed an
    earlier run could not push. A local path is stored as an absolute path.

    With --forge-url and --forge-credentials (the remote is a repository on
    that Gitea), the lab remembers its forge: `promote`, `approve` and
    `history` then go through pull requests and reviews (docs/forge.md).

    \b
    Examples:
      gitops-lab repo init ./lab-repo
      gitops-lab repo init ./lab-repo --remote /tmp/tour/lab.git     # made with `git init --bare`
      gitops-lab repo init ./lab-repo --remote http://localhost:8180/lab.git
      gitops-lab repo init ./lab-repo --remote /tmp/tour/lab.git --platform-remote /tmp/tour/ml-platform-pipelines.git
    """
    from gitops_lab.adapters.repo import init_working_copy
    from gitops_lab.adapters.repo.platform import seed_platform
    from gitops_lab.deadline import command_deadline
    from gitops_lab.state import EnvironmentState

    from pathlib import Path

    import contextlib

    from gitops_lab.adapters.forge.seed import read_accounts
    from gitops_lab.adapters.repo.git import GitAuth, authenticated
    from gitops_lab.errors import UsageError

    if bool(forge_url) != bool(forge_credentials):
        raise UsageError("--forge-url and --forge-credentials go together", fix="pass both, or neither")
    auth = None
    if forge_credentials:
        learner = read_accounts(Path(forge_credentials)).learner  # refused now, not at the first promotion
        # the seed is pushed as the learner, through the header git calls carry (never the URL or .git/config)
        auth = GitAuth(learner.username, learner.password)
    saved = app.state() or EnvironmentState(name=app.name)
    reporter = app.reporter(output)
    with (
        command_deadline(timeout),
        authenticated(auth) if auth else contextlib.nullcontext(),
        reporter.step(f"Preparing the lab repository at {path}") as step,
    ):
        result = init_working_copy(path, remote)
        step.done(result.action)
        platform = seed_platform(platform_remote) if platform_remote else None
    if result.note:
        reporter.warn(result.note)
    saved.repo_path = str(result.path)
    saved.remote_url = result.remote
    if forge_url and forge_credentials:
        saved.forge_url = forge_url.rstrip("/")
        saved.forge_credentials = str(Path(forge_credentials).resolve())
    saved.save()
    verb = {"seeded": "Seeded", "cloned": "Cloned", "reused": "Reused"}[result.action]
    text = f"{verb} the lab repository at {result.path} ({result.commit[:7]})"
    if result.remote:
        text += f", remote {result.remote}"
    if not result.changed:
        text += "; nothing changed"
    if platform:
        text += f"\nPlatform repository {platform_remote}: {platform} (tag v1.0.0)"
    app.emit(
        output,
        {
            "path": str(result.path),
            "action": result.action,
            "commit": result.commit,
            "remote": result.remote,
            "changed": result.changed,
            "note": result.note,
            "platform": {"remote": platform_remote, "action": platform} if platform else None,
        },
        text,
    )

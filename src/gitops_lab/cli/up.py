"""`gitops-lab up`: set up the whole lab environment in one command."""

from __future__ import annotations

import click

from gitops_lab.adapters.engines import ENGINES
from gitops_lab.cli.app import Application, context_option, kubeconfig_option, output_option, pass_app


@click.command("up")
@click.option("--provider", type=click.Choice(["kind", "existing"]), default="kind", show_default=True,
              help="kind: create a local cluster; existing: use the cluster of --kubeconfig/--context.")
@click.option("--engine", type=click.Choice(ENGINES), default="argocd", show_default=True, help="GitOps engine.")
@click.option("--engine-install", type=click.Choice(["managed", "external"]), default="managed", show_default=True,
              help="managed: install the pinned release; external: use the one already running.")
@click.option("--git-url", metavar="URL",
              help="Empty Git repository (http(s) or ssh) to seed and have the engine sync from. "
                   "Credentials: $GITOPS_LAB_GIT_USERNAME and $GITOPS_LAB_GIT_PASSWORD.")
@click.option("--engine-git-url", metavar="URL", help="The same repository as the engine reaches it, if the URL differs.")
@click.option("--repo", "repo", metavar="PATH", help="Where to keep the working copy. Default: in the state folder.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True, metavar="SECONDS",
              help="One deadline for the whole command.")
@click.option("--engine-manifest-url", metavar="URL", hidden=True,
              help="Download the managed engine's manifest from here instead (a mirror).")
@kubeconfig_option
@context_option
@output_option
@pass_app
def command(app: Application, provider: str, engine: str, engine_install: str, git_url: str | None,
            engine_git_url: str | None, repo: str | None, timeout: float, engine_manifest_url: str | None,
            kubeconfig: str | None, context: str | None, output: str) -> None:
    """Set up the lab: cluster, engine, Git repository, and dev, staging and prod synced.

    Every step checks what is already there, so running it again is safe and
    changes nothing when all is in place. Settings are saved, so later commands
    (promote, rollback, status) need no flags.

    \b
    Examples:
      gitops-lab up                                   # kind + Argo CD on this laptop
      gitops-lab up --engine flux
      gitops-lab up --provider existing --context my-cluster \\
          --engine flux --engine-install external --git-url https://git.example.com/lab.git
    """
    from gitops_lab.workflows.up import UpOptions, up

    options = UpOptions(
        provider=provider, engine=engine, engine_install=engine_install, git_url=git_url,
        engine_git_url=engine_git_url, kubeconfig=kubeconfig, context=context, repo_path=repo,
        timeout=timeout, install_source_url=engine_manifest_url,
    )
    result = up(options, app.reporter(output), app.name, app.state())
    lines = []
    if result.changed:
        lines.append(f"The lab environment {result.name!r} is up ({len(result.changed)} changes).")
    else:
        lines.append(f"The lab environment {result.name!r} was already up; nothing changed.")
    lines += [
        f"  Cluster:       {result.kube_host}",
        f"  Engine:        {result.engine}",
        f"  Clone URL:     {result.clone_url}",
        f"  Working copy:  {result.repo_path}",
        "  Environments:  " + ", ".join(f"{env} runs {v}" for env, v in result.versions.items()),
        "Next: `gitops-lab status`, then `gitops-lab promote --from dev --to staging`.",
    ]
    app.emit(output, result.to_dict(), "\n".join(lines))

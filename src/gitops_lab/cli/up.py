"""`gitops-lab up`: set up the whole lab environment in one command."""

from __future__ import annotations

import click

from gitops_lab.adapters.cluster import PROVIDERS
from gitops_lab.adapters.engines import ENGINES
from gitops_lab.cli.app import Application, context_option, kubeconfig_option, output_option, pass_app, timeout_option


@click.command("up")
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default="kind",
    show_default=True,
    help="kind: create a local cluster; existing: use the cluster of --kubeconfig/--context.",
)
@click.option("--engine", type=click.Choice(ENGINES), default="argocd", show_default=True, help="GitOps engine.")
@click.option(
    "--engine-install",
    type=click.Choice(["managed", "external"]),
    default="managed",
    show_default=True,
    help="managed: install the pinned release; external: use the one already running.",
)
@click.option(
    "--git-url",
    metavar="URL",
    help="Empty Git repository (http(s) or ssh) to seed and have the engine sync from. "
    "Credentials: $GITOPS_LAB_GIT_USERNAME and $GITOPS_LAB_GIT_PASSWORD.",
)
@click.option(
    "--engine-git-url", metavar="URL", help="The same repository as the engine reaches it, if the URL differs."
)
@click.option(
    "--git-server",
    type=click.Choice(["builtin", "gitea"]),
    default="builtin",
    show_default=True,
    help="kind: the lab's Git server. gitea: a forge with pull requests, reviews, commit statuses, a web UI "
    "and push webhooks (prod is then promoted by an approved pull request); builtin: gitops-lab's small "
    "smart-HTTP server.",
)
@click.option("--repo", "repo", metavar="PATH", help="Where to keep the working copy. Default: in the state folder.")
@timeout_option(default=900, help="One deadline for the whole command.")
@click.option(
    "--engine-manifests",
    metavar="PATH|URL",
    help="Managed install: take the engine's install.yaml from this file, from a folder holding "
    "<engine>/install.yaml, or from a mirror URL, instead of the release download "
    "(air-gapped classrooms). A pinned digest still applies.",
)
@click.option("--recreate", is_flag=True, help="kind: delete the existing cluster and create it again.")
@click.option("--retain", is_flag=True, help="kind: keep a cluster whose creation failed, for debugging.")
@click.option(
    "--preload",
    is_flag=True,
    help="kind: pull every image once with Docker and load it into the node (offline classrooms).",
)
@click.option("--merge-kubeconfig", is_flag=True, help="kind: also add the cluster to ~/.kube/config.")
@click.option(
    "--release-automation",
    is_flag=True,
    help="kind: run the release automation as a pod, deployed through the lab repository (automation/): "
    "every push that changes dev's version is promoted, verified and rolled back with no terminal open. "
    "Builds its image from this installed gitops-lab.",
)
@click.option(
    "--registry-mirror",
    "registry_mirrors",
    multiple=True,
    metavar="REGISTRY=URL",
    help="kind: pull REGISTRY's images through URL, e.g. docker.io=http://host.docker.internal:5000.",
)
@kubeconfig_option
@context_option
@output_option
@pass_app
def command(
    app: Application,
    provider: str,
    engine: str,
    engine_install: str,
    git_url: str | None,
    engine_git_url: str | None,
    git_server: str,
    repo: str | None,
    timeout: float,
    engine_manifests: str | None,
    recreate: bool,
    retain: bool,
    preload: bool,
    merge_kubeconfig: bool,
    release_automation: bool,
    registry_mirrors: tuple[str, ...],
    kubeconfig: str | None,
    context: str | None,
    output: str,
) -> None:
    """Set up the lab: cluster, engine, Git repository, and dev, staging and prod synced.

    Every step checks what is already there, so running it again is safe and
    changes nothing when all is in place. Settings are saved, so later commands
    (promote, rollback, status) need no flags.

    \b
    Examples:
      gitops-lab up                                   # kind + Argo CD on this laptop
      gitops-lab up --engine flux --preload          # pull images once, then work offline
      gitops-lab up --git-server gitea                # Gitea: pull requests, reviews, a web UI
      gitops-lab up --engine argocd --engine-manifests ./classroom/manifests --preload
      gitops-lab up --provider existing --context my-cluster \\
          --engine flux --engine-install external --git-url https://git.example.com/lab.git
    """
    from gitops_lab.errors import UsageError
    from gitops_lab.workflows.up import UpOptions, up

    mirrors = {}
    for item in registry_mirrors:
        registry, sep, url = item.partition("=")
        if not sep or not registry or not url:
            raise UsageError(
                f"--registry-mirror {item!r} is not REGISTRY=URL",
                fix="write it like docker.io=http://host.docker.internal:5000",
            )
        mirrors[registry] = url
    options = UpOptions(
        provider=provider,
        engine=engine,
        engine_install=engine_install,
        git_url=git_url,
        engine_git_url=engine_git_url,
        git_server=git_server,
        kubeconfig=kubeconfig,
        context=context,
        repo_path=repo,
        timeout=timeout,
        install_source_url=engine_manifests,
        recreate=recreate,
        retain=retain,
        preload=preload,
        merge_kubeconfig=merge_kubeconfig,
        registry_mirrors=mirrors,
        release_automation=release_automation,
    )
    result = up(options, app.reporter(output), app.name, app.state())
    lines = []
    if result.changed:
        lines.append(f"The lab environment {result.name!r} is up ({len(result.changed)} changes).")
    else:
        lines.append(f"The lab environment {result.name!r} was already up; nothing changed.")
    lines += [
        f"  Cluster:       {result.kube_host}",
        f"  Engine:        {result.engine}"
        + (
            f" (UI: {result.engine_ui}; log in as admin, `gitops-lab credentials` prints the password)"
            if result.engine_ui
            else ""
        ),
        f"  Clone URL:     {result.clone_url}" + ("  (login: `gitops-lab credentials`)" if provider == "kind" else ""),
        *(
            [f"  Forge:         {result.forge_url} (Gitea; log in as the learner, `gitops-lab credentials`)"]
            if result.forge_url
            else []
        ),
        f"  Working copy:  {result.repo_path}",
        "  Environments:  " + ", ".join(f"{env} runs {v}" for env, v in result.versions.items()),
        "Next: `gitops-lab status`, then `gitops-lab promote --from dev --to staging`.",
    ]
    app.emit(output, result.to_dict(), "\n".join(lines))

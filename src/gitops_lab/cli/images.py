"""`gitops-lab images list|pull|load`: the lab's images, fetched once, loaded into kind."""

from __future__ import annotations

import click

from gitops_lab.adapters.engines import ENGINES
from gitops_lab.cli.app import Application, output_option, pass_app

engine_option = click.option(
    "--engine",
    type=click.Choice(ENGINES + ("all",)),
    default="all",
    show_default=True,
    help="Which engine's images to include.",
)


def _selected(engine: str) -> tuple[str, ...]:
    return ENGINES if engine == "all" else (engine,)


@click.group("images")
def command() -> None:
    """List, pull and load the images the lab runs (for slow or offline classrooms).

    The list is derived from the environments template, the engine release
    manifests in the cache, and the Git server; nothing is kept by hand.

    \b
    Examples:
      gitops-lab images list
      gitops-lab images pull --engine argocd
      gitops-lab images load
    """


@command.command("list")
@engine_option
@output_option
@pass_app
def list_images(app: Application, engine: str, output: str) -> None:
    """Show every image the lab needs and where it comes from.

    \b
    Examples:
      gitops-lab images list
      gitops-lab images list --engine flux --output json
    """
    from gitops_lab.adapters.images import lab_images

    images, notes = lab_images(_selected(engine))
    reporter = app.reporter(output)
    for note in notes:
        reporter.warn(note)
    text = "\n".join(f"{i.ref}  ({i.source}{'' if i.load else ', not loaded'})" for i in images)
    app.emit(output, {"images": [i.as_dict() for i in images], "notes": notes}, text)


@command.command("pull")
@engine_option
@output_option
@pass_app
def pull(app: Application, engine: str, output: str) -> None:
    """Pull every image once with Docker, for the kind node's platform.

    \b
    Examples:
      gitops-lab images pull                  # before class, on a good network
      gitops-lab images pull --engine argocd
    """
    from gitops_lab.adapters.images import lab_images, pull_images

    images, notes = lab_images(_selected(engine))
    reporter = app.reporter(output)
    for note in notes:
        reporter.warn(note)
    results = pull_images(images, reporter)
    pulled = sum(r.action == "pulled" for r in results)
    app.emit(
        output,
        {"images": [{"image": r.ref, "action": r.action} for r in results]},
        f"{pulled} pulled, {len(results) - pulled} already present",
    )


@command.command("load")
@engine_option
@output_option
@pass_app
def load(app: Application, engine: str, output: str) -> None:
    """Load the pulled images into the lab's kind cluster (docker save + kind load image-archive).

    \b
    Examples:
      gitops-lab images load
      gitops-lab up --preload                 # pull and load as part of up
    """
    from gitops_lab.adapters.cluster.kind_config import KindSettings
    from gitops_lab.adapters.cluster.kind_provider import KindCluster
    from gitops_lab.errors import NotFound
    from gitops_lab.adapters.images import lab_images, load_images
    from gitops_lab.state import environment_dir

    images, notes = lab_images(_selected(engine), include_node=False)
    reporter = app.reporter(output)
    for note in notes:
        reporter.warn(note)
    cluster = KindCluster(KindSettings(name=app.name), environment_dir(app.name))
    cluster.kind(reporter)
    if not cluster.exists():
        raise NotFound(f"there is no kind cluster named {app.name}", fix="run `gitops-lab up` first")
    refs = load_images(images, cluster, reporter, environment_dir(app.name))
    app.emit(output, {"loaded": refs}, f"Loaded {len(refs)} images into kind cluster {app.name}")

"""`gitops-lab class ...`: many learners on one shared cluster, each an isolated tenant."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitops_lab.adapters.engines import ENGINES
from gitops_lab.cli.app import (
    Application,
    context_option,
    kubeconfig_option,
    output_option,
    pass_app,
    timeout_option,
)
from gitops_lab.cli.evidence import emit_evidence, out_option
from gitops_lab.cli.lab import labs_dir_option

if TYPE_CHECKING:
    from gitops_lab.classroom.reviews import ClassForge
    from gitops_lab.classroom.status import LearnerRow


def _labs_root(labs_dir: str | None) -> Path:
    from gitops_lab.resources import labs_dir as shipped

    return Path(labs_dir).expanduser().resolve() if labs_dir else shipped()


forge_url_option = click.option(
    "--forge-url", metavar="URL", help="The class's forge (Gitea), e.g. http://gitea.class.example:3000."
)
forge_credentials_option = click.option(
    "--forge-credentials",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The forge's accounts file (forge-credentials.json): its admin, and the learners' accounts.",
)


@click.group("class")
def group() -> None:
    """Teach a class on one shared cluster: a tenant per learner, instructor commands.

    Each learner gets namespaces LEARNER-dev, -staging and -prod, a repository of
    their own on the Git server, their own Argo CD AppProject (or Flux
    Kustomizations acting as their own ServiceAccount), and a kit: a kubeconfig
    that reaches only their namespaces, and Git credentials that push only
    their repository. With the kit, every lab and command works as on a laptop.

    The Git server runs in the cluster (one per class): gitops-lab's own, or
    Gitea (--git-server gitea: pull requests and peer review), or is your own
    serving a folder (--git-root).

    \b
    Examples:
      gitops-lab class create --count 10 --engine flux --kubeconfig admin.conf
      gitops-lab class create --count 10 --engine flux --kubeconfig admin.conf \\
          --git-root /srv/git --git-base-url http://git.example:8180 --git-auth-file /srv/git-users
      gitops-lab class status
      gitops-lab class reset --learner learner-03 --lab promotion
      gitops-lab class join ./kit            # a learner, with the kit they were given
    """


@group.command("create")
@click.option("--learners", "learners_file", metavar="FILE", help="File with one learner name a line.")
@click.option("--count", type=click.IntRange(min=1), help="Number of learners, named learner-01 .. learner-NN.")
@click.option("--engine", type=click.Choice(ENGINES), default="argocd", show_default=True)
@click.option(
    "--engine-install",
    type=click.Choice(["external", "managed"]),
    default="external",
    show_default=True,
    help="external: the engine already runs on the cluster; managed: install the pinned release.",
)
@click.option(
    "--git-server",
    type=click.Choice(["in-cluster", "folder", "gitea"]),
    help="in-cluster: gitops-lab runs the class's Git server in the cluster (the default without --git-root); "
    "folder: your Git server serves --git-root; gitea: Gitea in the cluster, one organisation for the class, "
    "with pull requests and peer review (docs/classroom.md).",
)
@click.option(
    "--git-root",
    metavar="DIR",
    help="folder: the folder of bare repositories that your Git server serves over HTTP.",
)
@click.option(
    "--git-base-url",
    metavar="URL",
    help="The URL learners (and this machine) reach the repositories at. folder: required; in-cluster: "
    "default http://NODE-ADDRESS:NODEPORT.",
)
@click.option(
    "--git-engine-base-url",
    metavar="URL",
    help="folder: the same, as the engines reach it (default: --git-base-url).",
)
@click.option(
    "--git-node-port",
    type=click.IntRange(min=30000, max=32767),
    help="in-cluster: the NodePort of the class's Git server.  [default: 30081]",
)
@click.option(
    "--git-auth-file",
    metavar="FILE",
    help="Users file the server reads (gitops-lab's server.py AUTH_FILE): learners may push only their "
    "own repository. Without it the server must do its own access control.",
)
@click.option(
    "--kit-days",
    type=click.IntRange(min=1, max=365),
    default=30,
    show_default=True,
    help="How long the learners' kubeconfig tokens stay valid.",
)
@kubeconfig_option
@context_option
@timeout_option
@output_option
@pass_app
def create_command(
    app: Application,
    learners_file: str | None,
    count: int | None,
    engine: str,
    engine_install: str,
    git_server: str | None,
    git_root: str | None,
    git_base_url: str | None,
    git_engine_base_url: str | None,
    git_node_port: int | None,
    git_auth_file: str | None,
    kit_days: int,
    kubeconfig: str | None,
    context: str | None,
    timeout: float,
    output: str,
) -> None:
    """Create a class (or add learners to it): tenants, repositories and learner kits.

    Safe to run again: what exists is kept, kits are refreshed.

    \b
    The Git server runs in the cluster unless --git-root names the folder that
    your own server serves.

    \b
    Examples:
      gitops-lab class create --count 10 --engine flux --kubeconfig admin.conf
      gitops-lab class create --learners names.txt --engine argocd \\
          --git-base-url http://git.class.example     # an Ingress to the in-cluster server
      gitops-lab class create --learners names.txt --engine argocd \\
          --git-root /srv/git --git-base-url http://10.0.0.5:8180 --git-auth-file /srv/git/users
    """
    from gitops_lab.classroom.create import ClassOptions, create
    from gitops_lab.classroom.record import git_server_record
    from gitops_lab.classroom.roster import learners_from

    learners = learners_from(learners_file, count)
    git = git_server_record(git_server, git_root, git_base_url, git_engine_base_url, git_node_port, git_auth_file)
    kubeconfig, context = app.cluster_access(kubeconfig, context)
    options = ClassOptions(engine, engine_install, kubeconfig, context, git, kit_days, timeout)
    result = create(app.name, learners, options, app.reporter(output))
    lines = [
        f"Class {result.name} ({result.engine}): {len(result.learners)} learners ready in {result.seconds:.1f}s",
        f"Git server: {result.git_server}",
        "Learner kits (kubeconfig + kit.json, mode 0600):",
    ]
    lines += [f"  {learner}  {path}" for learner, path in sorted(result.kits.items())]
    if not result.git_enforces_access:
        lines.append(
            "Note: without --git-auth-file, gitops-lab cannot make the Git server refuse a push to "
            "another learner's repository; the server must do that itself."
        )
    lines.append("Each learner runs `gitops-lab class join KIT`; watch them with `gitops-lab class status`.")
    app.emit(output, result.to_dict(), "\n".join(lines))


@group.command("status")
@click.option("--learner", "learners", metavar="NAME", multiple=True, help="Only these learners (repeatable).")
@forge_url_option
@forge_credentials_option
@labs_dir_option
@output_option
@pass_app
def status_command(
    app: Application,
    learners: tuple[str, ...],
    forge_url: str | None,
    forge_credentials: Path | None,
    labs_dir: str | None,
    output: str,
) -> None:
    """One row per learner: lab, current step, checks passing, health of dev, staging and prod.

    The lab is the learner's newest started lab (its start tag in their
    repository); the step is its first step whose checks do not pass yet.
    An environment is ok, reconciling (the engine is re-reading Git while the
    cluster serves what Git says) or failing (its health, or its sync state).
    A learner whose repository cannot be fetched is shown as last fetched,
    with the reason under the table. Exits 1 when an environment of some
    learner is failing or a repository cannot be fetched.

    On a forge (the class's own Gitea, `class create --git-server gitea`, or
    --forge-url), once `class reviews assign` ran, a REVIEWS column: the
    reviews received on the learner's design pull request ("1/2 approved",
    "changes requested", "commented", "requested", or "not ready": no pull
    request when reviews were assigned) and those given ("gave 1/2": an
    approval or a request for changes on each document they were assigned).

    \b
    Examples:
      gitops-lab class status
      gitops-lab class status --output json | jq '.[] | select(.healthy | not) | .learner'
      gitops-lab class status --forge-url http://localhost:3000 --forge-credentials forge-credentials.json
    """
    from gitops_lab.classroom.status import status

    forge = _forge(forge_url, forge_credentials) or _own_forge(app.name)
    rows = status(app.name, app.reporter(output), _labs_root(labs_dir), list(learners) or None, forge)
    text = status_table(rows)
    if forge and all(r.reviews is None for r in rows):
        text += "\nNo reviews assigned yet: `gitops-lab class reviews assign` gives each design document reviewers."
    app.emit(output, [r.to_dict() for r in rows], text)
    if not all(r.healthy for r in rows):
        sys.exit(1)


def status_table(rows: list[LearnerRow]) -> str:
    """`class status`'s table, then the learners whose repository could not be fetched; a REVIEWS
    column when the rows carry their review standing."""
    from gitops_lab.adapters.repo.layout import ENVIRONMENTS
    from gitops_lab.cli.output import format_table

    def env_cell(e: dict) -> str:
        failing = e["health"] if e["sync"] in ("Synced", "Applied") else e["sync"]
        return f"{e['version'] or '-'} {failing if e['state'] == 'failing' else e['state']}"

    reviews = any(r.reviews is not None for r in rows)
    table = format_table(
        (
            "LEARNER",
            "LAB",
            "STEP",
            "CHECKS",
            *(env.upper() for env in ENVIRONMENTS),
            *(("REVIEWS",) if reviews else ()),
        ),
        [
            (
                r.learner,
                r.lab or "-",
                r.step or "-",
                f"{r.checks_passing}/{r.steps}" if r.lab else "-",
                *(env_cell(r.environments[env]) for env in ENVIRONMENTS),
                *(((r.reviews or {}).get("summary", "-"),) if reviews else ()),
            )
            for r in rows
        ],
    )
    problems = [f"{r.learner}: {r.git_problem}" for r in rows if r.git_problem]
    return "\n".join([table, *problems])


@group.command("reset")
@click.option("--learner", "learners", metavar="NAME", multiple=True, help="Only these learners (repeatable).")
@click.option(
    "--lab",
    "lab_id",
    metavar="LAB",
    help="Back to this lab's start point (started if need be). Default: back to the seed.",
)
@labs_dir_option
@timeout_option
@output_option
@pass_app
def reset_command(
    app: Application, learners: tuple[str, ...], lab_id: str | None, labs_dir: str | None, timeout: float, output: str
) -> None:
    """Reset learners (default: all) to a lab's start point or to the seed, and wait until served.

    A reset is a new commit in the learner's repository: their history stays.

    \b
    Examples:
      gitops-lab class reset --learner learner-03
      gitops-lab class reset --lab promotion
    """
    from gitops_lab.classroom.reset import reset

    done = reset(app.name, list(learners) or None, lab_id, app.reporter(output), _labs_root(labs_dir), timeout)
    text = "\n".join(
        f"reset {d.learner} to {('the start of lab ' + d.lab) if d.lab else 'the seed'} ({d.commit[:7]})" for d in done
    )
    app.emit(output, [d.to_dict() for d in done], text)


@group.command("report")
@click.option("--learner", "learners", metavar="NAME", multiple=True, help="Only these learners (repeatable).")
@forge_url_option
@forge_credentials_option
@out_option
@output_option
@pass_app
def report_command(
    app: Application,
    learners: tuple[str, ...],
    forge_url: str | None,
    forge_credentials: Path | None,
    out: Path | None,
    output: str,
) -> None:
    """The evidence for the module's two assessments, per learner, from what each pushed.

    Per learner: `design check` run at their pushed head; every promotion and
    rollback `gitops-lab release` made in their repository, with the
    versions from and to, the verdict and the verification evidence from the
    trailers. Reviews need a forge (the class's own Gitea, or --forge-url):
    each learner's design pull requests on it (ORG/LEARNER on the class's
    Gitea, LEARNER/lab on a forge given by the flags) with their reviews and each review's
    rubric scores (its `Scores: 2,2,1,2,2,1,2 (12/14)` line, or what is wrong
    with it); the peer review passes with an approval whose scores meet the
    rubric's pass mark, and once `class reviews assign` ran, only with an
    assigned classmate's, each assigned reviewer's review listed. Without it:
    "no forge: reviews not available". Prints one verdict per
    learner and assessment; --out DIR writes evidence.md and
    evidence-junit.xml (one testcase per learner and assessment, failed when
    the evidence is missing). No cluster is needed. Exits 0 whatever the
    verdicts.

    \b
    Examples:
      gitops-lab class report --out ./evidence
      gitops-lab class report --learner learner-03 --output json
    """
    from gitops_lab.classroom.report import report

    forge = _forge(forge_url, forge_credentials) or _own_forge(app.name)
    evidences = report(app.name, app.reporter(output), list(learners) or None, forge)
    emit_evidence(app, evidences, out, output, f"Assessment evidence: class {app.name}")


def _forge(url: str | None, credentials: Path | None) -> ClassForge | None:
    """The forge the flags name, or None without them (the class's own is then read, if it has one)."""
    from gitops_lab.adapters.forge.seed import read_accounts
    from gitops_lab.classroom.reviews import ClassForge
    from gitops_lab.errors import UsageError

    if bool(url) != bool(credentials):
        raise UsageError("--forge-url and --forge-credentials go together", fix="pass both, or neither")
    return ClassForge(url, read_accounts(credentials)) if url and credentials else None


def _own_forge(name: str) -> ClassForge | None:
    """The class's own forge (`class create --git-server gitea`), or None."""
    from gitops_lab.classroom.record import load_class_or_none
    from gitops_lab.classroom.reviews import class_forge

    return class_forge(load_class_or_none(name))


@group.group("reviews")
def reviews_group() -> None:
    """Peer review of the learners' design documents on the forge (Gitea)."""


@reviews_group.command("assign")
@forge_url_option
@forge_credentials_option
@click.option(
    "--learners",
    "learners_file",
    metavar="FILE",
    help="Who reviews, one name a line. Default: the class's learners, else the credentials file's.",
)
@click.option("--per-learner", type=click.IntRange(min=1), default=2, show_default=True, help="Reviewers per document.")
@click.option("--seed", type=int, default=0, show_default=True, help="Another seed gives other pairs.")
@output_option
@pass_app
def reviews_assign_command(
    app: Application,
    forge_url: str | None,
    forge_credentials: Path | None,
    learners_file: str | None,
    per_learner: int,
    seed: int,
    output: str,
) -> None:
    """Give each learner's design pull request N classmates to review it, on the forge.

    The pairs come from the names and --seed: nobody reviews themselves,
    everybody reviews N classmates, the same seed gives the same pairs. For
    each learner whose design pull request (on LEARNER/lab, changing
    docs/pipeline-design.md) is open, the forge's admin gives the reviewers
    read access to it and requests their review on it. Learners
    without one are "not ready": run it again later. The plan is kept in the
    class's state folder (reviews.json); running it again requests nothing
    twice. A class made with `--git-server gitea` runs it on its own Gitea
    (no flags needed; each learner's lab repository is ORG/LEARNER there);
    other classes name a Gitea with the design pull requests by the flags.

    \b
    Examples:
      gitops-lab class reviews assign --per-learner 2      # a class on its own Gitea
      gitops-lab class reviews assign --forge-url http://localhost:3000 \\
          --forge-credentials forge-credentials.json --per-learner 2
    """
    from gitops_lab.classroom.record import load_class_or_none
    from gitops_lab.classroom.reviews import assign, class_forge
    from gitops_lab.classroom.roster import learners_from
    from gitops_lab.errors import UsageError

    record = load_class_or_none(app.name)
    forge = _forge(forge_url, forge_credentials) or class_forge(record)
    if forge is None:
        why = (
            f"the class {app.name!r} keeps its Git on a {record.git.kind} server"
            if record
            else "there is no class here"
        )
        raise UsageError(
            f"peer review needs a forge (Gitea): {why}",
            fix="pass --forge-url and --forge-credentials, or create the class with `--git-server gitea`",
        )
    if learners_file:
        names = learners_from(learners_file, None)
    elif record is not None:
        names = record.learners
    else:
        names = [a.username for a in forge.accounts.learners]
    done = assign(app.name, forge, names, per_learner, seed, app.reporter(output))
    lines = []
    for a in done:
        if a.status == "assigned":
            lines.append(f"{a.learner}: #{a.pull_request} reviewed by {', '.join(a.reviewers)}  {a.url}")
        else:
            lines.append(f"{a.learner}: not ready ({a.reason}); reviewers when ready: {', '.join(a.reviewers)}")
    app.emit(output, [a.to_dict() for a in done], "\n".join(lines))


@group.command("delete")
@timeout_option
@output_option
@pass_app
def delete_command(app: Application, timeout: float, output: str) -> None:
    """Delete the class: every tenant, repository and kit (repositories are bundled first).

    \b
    Examples:
      gitops-lab class delete
    """
    from gitops_lab.classroom.delete import delete
    from gitops_lab.classroom.record import class_dir

    result = delete(app.name, app.reporter(output), timeout)
    text = (
        f"Deleted the class {result.name}: {len(result.learners)} tenants.\n"
        f"Repository bundles: {class_dir(app.name) / 'backups'}"
    )
    app.emit(output, result.to_dict(), text)


@group.command("join")
@click.argument("kit", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo", "repo", metavar="PATH", help="Where to clone your repository. Default: the state folder.")
@output_option
@pass_app
def join_command(app: Application, kit: Path, repo: str | None, output: str) -> None:
    """For a learner: set up your lab environment from the kit your instructor gave you.

    Afterwards `gitops-lab status`, `promote`, `rollback` and `lab ...` work on
    your own namespaces and repository.

    \b
    Examples:
      gitops-lab class join ./kit
      gitops-lab lab start gitops-basics
    """
    from gitops_lab.classroom.kits import join

    result = join(kit, app.name, repo, app.reporter(output))
    text = (
        f"Joined as {result.learner}: namespaces {', '.join(result.namespaces.values())}\n"
        f"Your working copy: {result.repo_path} (origin {result.clone_url})\n"
        + (f"Your platform repository (lab ci-templates): {result.platform_url}\n" if result.platform_url else "")
        + "Next: `gitops-lab status`, then `gitops-lab lab list`."
    )
    app.emit(output, result.to_dict(), text)

"""`up`: cluster, engine, Git server, repository, registration, then wait for
all three environments to be synced and healthy.

`up` runs STEPS in order: each a small function of one UpContext, under its
own status line. The cluster provider and the Git server are chosen once, at
the start (provider_for, lab_git_server); what differs between kind and an
existing cluster is theirs to say, and what differs between engines is the
engine adapter's.

Every step checks what is already there first, so `up` can run again at any
time, including after Ctrl-C: a second run finds everything in place, changes
nothing, and says so.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from gitops_lab.adapters import images
from gitops_lab.adapters.cluster import ClusterInfo, ClusterProvider, provider_for
from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.base import Engine, EngineStatus, EnvironmentTarget, RepoAccess
from gitops_lab.adapters.gitserver import lab_git_server
from gitops_lab.adapters.gitserver.lab import LabGitServer, LabRepository
from gitops_lab.adapters.images import LabImage
from gitops_lab.adapters.release_image import build_release_image
from gitops_lab.adapters.repo import init_working_copy
from gitops_lab.adapters.repo.git import Git, authenticated, current_auth
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.adapters.repo.platform import remote_exists, seed_platform
from gitops_lab.adapters.repo.publish import catch_up, remote_branch
from gitops_lab.adapters.repo.seed import SeedResult
from gitops_lab.deadline import Deadline, command_deadline_unless_set
from gitops_lab.errors import GitError, UsageError
from gitops_lab.kube.client import Kube, check_reachable, connect
from gitops_lab.reporter import NamedStep, Reporter, Step, run_steps
from gitops_lab.state import EnvironmentState, environment_dir
from gitops_lab.workflows import automation_setup
from gitops_lab.workflows.converge import converge
from gitops_lab.workflows.environment import LabEnvironment, targets_for
from gitops_lab.workflows.preflight import Probes, run_preflight


@dataclass
class UpOptions:
    provider: str = "kind"
    engine: str = "argocd"
    engine_install: str = "managed"
    git_url: str | None = None
    # The URL engines fetch from, when it differs from what the host pushes to.
    engine_git_url: str | None = None
    # kind: the in-cluster Git server, "builtin" (gitops-lab's own) or "gitea" (the forge)
    git_server: str = "builtin"
    kubeconfig: str | None = None
    context: str | None = None
    repo_path: str | None = None
    timeout: float = 900
    # Where managed mode downloads the release manifest from (a mirror).
    install_source_url: str | None = None
    # kind only
    recreate: bool = False
    retain: bool = False
    preload: bool = False
    merge_kubeconfig: bool = False
    registry_mirrors: dict[str, str] = field(default_factory=dict)
    # kind, built-in Git server: the release automation as a pod, deployed through the lab repository
    release_automation: bool = False


@dataclass
class UpResult:
    name: str
    changed: list[str] = field(default_factory=list)
    repo_path: str = ""
    clone_url: str = ""
    engine: str = ""
    engine_ui: str | None = None
    forge_url: str | None = None
    kube_host: str = ""
    kubeconfig: str | None = None
    environments: list[EngineStatus] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "changed": self.changed,
            "repo_path": self.repo_path,
            "clone_url": self.clone_url,
            "engine": self.engine,
            "engine_ui": self.engine_ui,
            "forge_url": self.forge_url,
            "kube_host": self.kube_host,
            "kubeconfig": self.kubeconfig,
            "versions": self.versions,
            "environments": [e.to_dict() for e in self.environments],
        }


def check_options(options: UpOptions) -> None:
    """Refuse bad combinations before anything is created."""
    if options.provider == "existing":
        if not options.git_url:
            raise UsageError(
                "--git-url is required with --provider existing",
                fix="pass the URL of an empty Git repository the cluster can reach, "
                "e.g. --git-url https://git.example.com/lab.git",
            )
        for url in filter(None, (options.git_url, options.engine_git_url)):
            if url.startswith(("file://", "git://")) or "://" not in url:
                raise UsageError(
                    f"engines cannot fetch from {url!r}", fix="use an http(s) or ssh URL (Flux accepts nothing else)"
                )
    elif options.git_url or options.engine_git_url:
        raise UsageError(
            "--git-url is for --provider existing; on kind, gitops-lab runs its own Git server",
            fix="drop --git-url, or add --provider existing",
        )
    if options.provider == "existing" and options.git_server != "builtin":
        raise UsageError(
            "--git-server is for kind, where gitops-lab runs the Git server; with --provider existing the "
            "repository is --git-url's",
            fix="drop --git-server, or use --provider kind",
        )
    if options.release_automation and (options.provider != "kind" or options.git_server != "builtin"):
        raise UsageError(
            "--release-automation runs on kind with the built-in Git server: `up` builds its image into "
            "kind, and it pushes to main as the Git server's writer",
            fix="drop --release-automation (`gitops-lab release --watch` does the same from this machine), "
            "or use --provider kind without --git-server",
        )
    if options.provider == "kind" and options.engine_install != "managed":
        raise UsageError(
            "a new kind cluster has no engine yet, so --engine-install external cannot work there",
            fix="drop --engine-install, or use --provider existing",
        )


@dataclass
class UpContext:
    """What every step of `up` reads and fills in."""

    options: UpOptions
    reporter: Reporter
    name: str
    previous: EnvironmentState | None
    deadline: Deadline
    result: UpResult
    engine: Engine
    cluster: ClusterProvider
    git_server: LabGitServer
    images: list[LabImage] = field(default_factory=list)
    info: ClusterInfo | None = None
    kube: Kube | None = None
    repository: LabRepository | None = None
    seeded: SeedResult | None = None
    state: EnvironmentState | None = None
    targets: list[EnvironmentTarget] = field(default_factory=list)
    # What the engine syncs besides the environments (the release automation's folder).
    extra_targets: list[EnvironmentTarget] = field(default_factory=list)
    automation_image: str | None = None
    # What lasts until `up` returns (the writer's Git credentials).
    scope: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


#: One step of `up`: ``run`` under a status line titled ``title`` (None: the step reports its own).
UpStep = NamedStep[UpContext]


def up(options: UpOptions, reporter: Reporter, name: str, previous: EnvironmentState | None = None) -> UpResult:
    """Check the options, choose the engine, cluster provider and Git server once, then run STEPS.

    Everything `up` does, git, kind, downloads and waits, ends by one deadline of ``options.timeout``.
    """
    check_options(options)
    home = environment_dir(name)
    with command_deadline_unless_set(options.timeout) as deadline:
        ctx = UpContext(
            options,
            reporter,
            name,
            previous,
            deadline,
            UpResult(name=name, engine=options.engine),
            engine=engine_for(options.engine),
            cluster=provider_for(
                options.provider,
                name,
                home,
                kubeconfig=options.kubeconfig,
                context=options.context,
                retain=options.retain,
                merge_kubeconfig=options.merge_kubeconfig,
                registry_mirrors=options.registry_mirrors,
            ),
            git_server=lab_git_server(
                name, options.git_url, options.engine_git_url, current_auth(), kind=options.git_server
            ),
        )
        with ctx.scope:
            run_steps(STEPS, ctx, reporter)
    return ctx.result


def check_machine(ctx: UpContext, status: Step) -> None:
    """A cluster on this machine's Docker: check the machine before anything is created."""
    if ctx.cluster.runs_here:
        # Busy lab ports are fine when this environment's own cluster holds them (a re-run).
        run_preflight(ctx.reporter, probes=Probes(cluster_exists=ctx.cluster.exists))


def pull_images(ctx: UpContext, status: Step) -> None:
    """--preload: every image the lab runs, pulled once into this machine's Docker."""
    if not (ctx.options.preload and ctx.cluster.runs_here):
        return
    ctx.engine.release(ctx.reporter, ctx.options.install_source_url)  # the image list reads the cached manifest
    ctx.images, notes = images.lab_images((ctx.engine,), git_servers=(ctx.options.git_server,))
    for note in notes:
        ctx.reporter.warn(note)
    pulled = images.pull_images(ctx.images, ctx.reporter)
    ctx.cluster.use_local_tags([p.ref for p in pulled if p.action == "local tag"])


def ensure_cluster(ctx: UpContext, status: Step) -> None:
    ctx.info = ctx.cluster.ensure(ctx.reporter, recreate=ctx.options.recreate)
    if ctx.info.created:
        ctx.result.changed.append(f"{ctx.cluster.name} cluster created")


def load_images(ctx: UpContext, status: Step) -> None:
    """--preload: the pulled images, loaded into the cluster's nodes."""
    if not ctx.images:
        return
    images.load_images(ctx.images, ctx.cluster, ctx.reporter, environment_dir(ctx.name) / "images")


def build_automation_image(ctx: UpContext, status: Step) -> None:
    """--release-automation: its image, built from this installed package, loaded into the node."""
    if not ctx.options.release_automation:
        return
    ctx.automation_image = ref = build_release_image(ctx.reporter)
    images.load_images(
        [LabImage(ref, "release-automation")], ctx.cluster, ctx.reporter, environment_dir(ctx.name) / "images"
    )


def install_automation(ctx: UpContext, status: Step) -> None:
    """--release-automation: its rights and credentials applied, its Deployment pushed to automation/."""
    if ctx.automation_image is None:
        return
    assert ctx.kube is not None and ctx.repository is not None and ctx.seeded is not None
    writer = ctx.repository.writer
    if writer is None:
        raise UsageError(
            "the release automation pushes as the Git server's writer, and this Git server has none",
            fix="drop --release-automation, or use the built-in Git server",
        )
    ctx.result.changed += automation_setup.apply_platform(ctx.kube, ctx.engine, writer)
    commit = automation_setup.publish_workload(
        ctx.seeded.path, ctx.automation_image, ctx.repository.engine_url, ctx.options.engine
    )
    if commit:
        ctx.result.changed.append(f"release automation pushed to {automation_setup.FOLDER}/ ({commit[:7]})")
    ctx.extra_targets = [automation_setup.automation_target()]
    status.done(f"{ctx.automation_image}, synced from {automation_setup.FOLDER}/")


def connect_cluster(ctx: UpContext, status: Step) -> None:
    assert ctx.info is not None
    kubeconfig = str(ctx.info.kubeconfig) if ctx.info.kubeconfig else None
    ctx.kube = kube = connect(kubeconfig, ctx.info.context)
    version = check_reachable(kube)
    status.done(f"{kube.host}, Kubernetes {version}")
    ctx.result.kube_host, ctx.result.kubeconfig = kube.host, kube.kubeconfig
    ctx.engine.attach(kube)


def install_engine(ctx: UpContext, status: Step) -> None:
    ports = ctx.cluster.ports
    if ports is not None:
        ctx.engine.serve_ui(ports.ui_node)
    options = ctx.options
    report = ctx.engine.install(options.engine_install, ctx.reporter, ctx.deadline, options.install_source_url)
    if report.changed:
        ctx.result.changed.append(f"{ctx.engine.display_name} {report.mode} install applied")
    if ports is not None:
        ctx.result.engine_ui = ctx.engine.ui_url(ports.ui_host)


def start_git_server(ctx: UpContext, status: Step) -> None:
    assert ctx.kube is not None
    ctx.result.changed += ctx.git_server.start(ctx.kube, ctx.deadline, status.update)
    ctx.repository = repository = ctx.git_server.repository()
    status.done(repository.host_url)
    # From here to the end of `up`, the CLI's own git commands push as the writer.
    ctx.scope.enter_context(authenticated(repository.writer))


def seed_repository(ctx: UpContext, status: Step) -> None:
    assert ctx.repository is not None
    previous = ctx.previous
    repo_path = Path(
        ctx.options.repo_path
        or (previous.repo_path if previous and previous.repo_path else environment_dir(ctx.name) / "repo")
    )
    ctx.seeded = seeded = init_working_copy(repo_path, ctx.repository.host_url)
    status.done(seeded.action)
    if seeded.changed:
        ctx.result.changed.append(f"repository {seeded.action}")
    if ctx.repository.platform_url and (
        not ctx.repository.platform_optional or remote_exists(ctx.repository.platform_url)
    ):
        if seed_platform(ctx.repository.platform_url) == "seeded":
            ctx.result.changed.append("platform repository seeded")
    ctx.result.repo_path, ctx.result.clone_url = str(seeded.path), ctx.repository.host_url
    ctx.result.forge_url = ctx.repository.forge_url
    ctx.targets = targets_for(RepoLayout(seeded.path))


def protect_repository(ctx: UpContext, status: Step) -> None:
    """A forge: main's branch rule now that it has a commit, and the push webhook to the engine."""
    assert ctx.kube is not None
    changed = ctx.git_server.protect(ctx.kube, ctx.engine.push_webhook)
    status.done(f"{len(changed)} changes" if changed else "no change")
    ctx.result.changed += changed


def register_environments(ctx: UpContext, status: Step) -> None:
    assert ctx.repository is not None
    repository = ctx.repository
    reader = repository.reader
    access = RepoAccess(
        url=repository.engine_url,
        username=reader.username if reader else None,
        password=reader.password if reader else None,
    )
    changed = ctx.engine.register(ctx.targets + ctx.extra_targets, access)
    status.done(f"{len(changed)} objects changed" if changed else "no change")
    ctx.result.changed += changed


def save_state(ctx: UpContext, status: Step) -> None:
    """Where the environment lives, so later commands need no flags."""
    assert ctx.seeded is not None and ctx.repository is not None and ctx.kube is not None and ctx.info is not None
    options = ctx.options
    ctx.state = state = ctx.previous or EnvironmentState(name=ctx.name)
    state.repo_path, state.remote_url = str(ctx.seeded.path), ctx.repository.host_url
    state.provider, state.engine, state.engine_install = options.provider, options.engine, options.engine_install
    if ctx.repository.forge_url:
        state.forge_url, state.forge_credentials = ctx.repository.forge_url, ctx.repository.forge_credentials
    state.kubeconfig, state.context, state.engine_repo_url = (
        ctx.kube.kubeconfig,
        ctx.info.context,
        ctx.repository.engine_url,
    )
    state.save()


def wait_until_synced(ctx: UpContext, status: Step) -> None:
    """Each environment serves the commit the remote has, with the version Git says."""
    assert ctx.seeded is not None and ctx.state is not None and ctx.kube is not None
    head = _served_commit(ctx.seeded, ctx.reporter)
    lab = LabEnvironment(ctx.state, ctx.kube, ctx.engine, ctx.seeded.path)
    ctx.result.versions.update(converge(lab, [t.name for t in ctx.targets], head, ctx.deadline, ctx.reporter))
    ctx.result.environments = [ctx.engine.status(t.name) for t in ctx.targets]


def grant_automation(ctx: UpContext, status: Step) -> None:
    """--release-automation: its Roles in the environments' namespaces, which exist once synced."""
    if ctx.automation_image is None:
        return
    assert ctx.kube is not None
    ctx.result.changed += automation_setup.grant_environments(ctx.kube, [t.namespace for t in ctx.targets])


def _install_title(ctx: UpContext) -> str:
    return f"{'Installing' if ctx.options.engine_install == 'managed' else 'Checking'} {ctx.engine.display_name}"


STEPS = (
    UpStep("check the machine", check_machine),
    UpStep("pull images", pull_images),
    UpStep("create the cluster", ensure_cluster),
    UpStep("load images", load_images),
    UpStep(
        "build the release automation",
        build_automation_image,
        lambda ctx: None,  # its build and load report their own steps
    ),
    UpStep("connect", connect_cluster, lambda ctx: "Connecting to the cluster"),
    UpStep("install the engine", install_engine, _install_title),
    UpStep("start the Git server", start_git_server, lambda ctx: ctx.git_server.start_title(ctx.deadline)),
    UpStep("seed the repository", seed_repository, lambda ctx: "Seeding the lab repository"),
    UpStep(
        "protect the repository",
        protect_repository,
        lambda ctx: (
            "Protecting main and adding the push webhook" if ctx.repository and ctx.repository.forge_url else None
        ),
    ),
    UpStep(
        "install the release automation",
        install_automation,
        lambda ctx: "Installing the release automation" if ctx.automation_image else None,
    ),
    UpStep(
        "register the environments",
        register_environments,
        lambda ctx: f"Registering dev, staging and prod with {ctx.engine.display_name}",
    ),
    UpStep("save the state", save_state),
    UpStep("wait until synced", wait_until_synced),
    UpStep(
        "grant the release automation the environments",
        grant_automation,
        lambda ctx: "Granting the release automation dev, staging and prod" if ctx.automation_image else None,
    ),
)


def _served_commit(seeded, reporter: Reporter) -> str:
    """The commit the engines serve: the remote's.

    A learner may have pushed since the working copy was made: the engines follow
    the remote, so the working copy catches up first (fast-forward only) and the
    wait is for the remote's head, never for a commit the remote lacks.
    """
    git = Git(seeded.path)
    if seeded.action != "reused" or not git.remote_url():
        return git.head()
    try:
        catch_up(git, unpublished="keep")  # a learner's unpushed commits are theirs to push
    except GitError as exc:
        reporter.warn(f"the working copy could not follow the remote ({exc.message}); waiting for what the remote has")
    return git.out("rev-parse", remote_branch(git))

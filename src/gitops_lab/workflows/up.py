"""`up`: cluster, engine, Git server, repository, registration, then wait for
all three environments to be synced and healthy.

Every step checks what is already there first, so `up` can run again at any
time, including after Ctrl-C: a second run finds everything in place, changes
nothing, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.base import Engine, EngineStatus, RepoAccess
from gitops_lab.adapters.repo import init_working_copy
from gitops_lab.adapters.repo.git import Git, GitAuth, authenticated, current_auth
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.errors import UsageError
from gitops_lab.kube.client import Kube, check_reachable, connect
from gitops_lab.kube.deadline import Deadline, command_deadline_unless_set
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState, environment_dir
from gitops_lab.workflows.converge import converge
from gitops_lab.workflows.environment import LabEnvironment, targets_for

if TYPE_CHECKING:
    from gitops_lab.images import LabImage

PROVIDERS = ("kind", "existing")


@dataclass
class UpOptions:
    provider: str = "kind"
    engine: str = "argocd"
    engine_install: str = "managed"
    git_url: str | None = None
    # The URL engines fetch from, when it differs from what the host pushes to.
    engine_git_url: str | None = None
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


@dataclass
class UpResult:
    name: str
    changed: list[str] = field(default_factory=list)
    repo_path: str = ""
    clone_url: str = ""
    engine: str = ""
    engine_ui: str | None = None
    kube_host: str = ""
    kubeconfig: str | None = None
    environments: list[EngineStatus] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "changed": self.changed, "repo_path": self.repo_path, "clone_url": self.clone_url,
            "engine": self.engine, "engine_ui": self.engine_ui, "kube_host": self.kube_host,
            "kubeconfig": self.kubeconfig, "versions": self.versions,
            "environments": [e.to_dict() for e in self.environments],
        }


def check_options(options: UpOptions) -> None:
    """Refuse bad combinations before anything is created."""
    if options.provider == "existing":
        if not options.git_url:
            raise UsageError("--git-url is required with --provider existing",
                             fix="pass the URL of an empty Git repository the cluster can reach, "
                                 "e.g. --git-url https://git.example.com/lab.git")
        for url in filter(None, (options.git_url, options.engine_git_url)):
            if url.startswith(("file://", "git://")) or "://" not in url:
                raise UsageError(f"engines cannot fetch from {url!r}",
                                 fix="use an http(s) or ssh URL (Flux accepts nothing else)")
    elif options.git_url or options.engine_git_url:
        raise UsageError("--git-url is for --provider existing; on kind, gitops-lab runs its own Git server",
                         fix="drop --git-url, or add --provider existing")
    if options.provider == "kind" and options.engine_install != "managed":
        raise UsageError("a new kind cluster has no engine yet, so --engine-install external cannot work there",
                         fix="drop --engine-install, or use --provider existing")


def up(options: UpOptions, reporter: Reporter, name: str, previous: EnvironmentState | None = None) -> UpResult:
    """Everything `up` does, git, kind, downloads and waits, ends by one deadline of ``options.timeout``."""
    check_options(options)
    with command_deadline_unless_set(options.timeout) as deadline:
        return _up(options, reporter, name, previous, deadline)


def _up(options: UpOptions, reporter: Reporter, name: str, previous: EnvironmentState | None,
        deadline: Deadline) -> UpResult:
    result = UpResult(name=name, engine=options.engine)
    kubeconfig, context = options.kubeconfig, options.context
    engine = engine_for(options.engine)

    if options.provider == "kind":
        kubeconfig, context, created = _kind_cluster(options, reporter, name, engine)
        if created:
            result.changed.append("kind cluster created")

    with reporter.step("Connecting to the cluster") as step:
        kube = connect(kubeconfig, context)
        version = check_reachable(kube)
        step.done(f"{kube.host}, Kubernetes {version}")
    result.kube_host, result.kubeconfig = kube.host, kube.kubeconfig
    engine = engine_for(options.engine, kube)

    with reporter.step(f"{'Installing' if options.engine_install == 'managed' else 'Checking'} {engine.display_name}"):
        if options.provider == "kind":
            engine.ui_node_port = LabPorts().ui_node
        report = engine.install(options.engine_install, reporter, deadline, options.install_source_url)
    if report.changed:
        result.changed.append(f"{engine.display_name} {report.mode} install applied")
    if options.provider == "kind" and options.engine == "argocd":
        result.engine_ui = f"http://localhost:{LabPorts().ui_host}"

    git_url, engine_git_url, writer, reader = options.git_url, options.engine_git_url, current_auth(), current_auth()
    if options.provider == "kind":
        git_url, engine_git_url, writer, reader = _git_server(kube, name, reporter, deadline, result)
    with authenticated(writer):
        return _seed_and_serve(options, reporter, name, previous, kube, engine, deadline, result,
                               (git_url, engine_git_url, reader), context)


def _seed_and_serve(options: UpOptions, reporter: Reporter, name: str, previous: EnvironmentState | None,
                    kube: Kube, engine: Engine, deadline: Deadline, result: UpResult,
                    git: tuple[str | None, str | None, GitAuth | None], context: str | None) -> UpResult:
    """Seed the repository (the CLI's git calls push as the writer), register it, wait until served."""
    git_url, engine_git_url, reader = git

    repo_path = Path(options.repo_path or (previous.repo_path if previous and previous.repo_path else
                                           environment_dir(name) / "repo"))
    with reporter.step("Seeding the lab repository") as step:
        seeded = init_working_copy(repo_path, git_url)
        step.done(seeded.action)
    if seeded.changed:
        result.changed.append(f"repository {seeded.action}")
    result.repo_path, result.clone_url = str(seeded.path), git_url or ""

    layout = RepoLayout(seeded.path)
    targets = targets_for(layout)
    access = RepoAccess(url=engine_git_url or git_url or "", username=reader.username if reader else None,
                        password=reader.password if reader else None)
    with reporter.step(f"Registering dev, staging and prod with {engine.display_name}") as step:
        changed = engine.register(targets, access)
        step.done(f"{len(changed)} objects changed" if changed else "no change")
    result.changed += changed

    state = previous or EnvironmentState(name=name)
    state.repo_path, state.remote_url = str(seeded.path), git_url
    state.provider, state.engine, state.engine_install = options.provider, options.engine, options.engine_install
    state.kubeconfig, state.context, state.engine_repo_url = kube.kubeconfig, context, access.url
    state.save()

    head = _served_commit(seeded, reporter)
    lab = LabEnvironment(state, kube, engine, seeded.path)
    result.versions.update(converge(lab, [t.name for t in targets], head, deadline, reporter))
    result.environments = [engine.status(t.name) for t in targets]
    return result


def _kind_cluster(options: UpOptions, reporter: Reporter, name: str, engine: Engine) -> tuple[str, str, bool]:
    """Preflight, then create or reuse the kind cluster (and preload images)."""
    from gitops_lab.adapters.cluster.kind import KindCluster, KindSettings
    from gitops_lab.workflows.preflight import Probes, run_preflight

    settings = KindSettings(name=name, retain=options.retain, merge_kubeconfig=options.merge_kubeconfig,
                            registry_mirrors=options.registry_mirrors)
    existing = KindCluster(settings, environment_dir(name))
    # Busy lab ports are fine when this environment's own cluster holds them (a re-run).
    run_preflight(reporter, probes=Probes(cluster_exists=existing.exists))
    images: list[LabImage] = []
    if options.preload:
        from gitops_lab.adapters.images import lab_images, pull_images

        engine.release(reporter, options.install_source_url)  # the image list reads the cached manifest
        images, notes = lab_images((options.engine,))
        for note in notes:
            reporter.warn(note)
        pulled = pull_images(images, reporter)
        node = next((p for p in pulled if p.ref == settings.node_image), None)
        if node is not None and node.action == "local tag":
            settings.local_node_image = settings.node_image.split("@", 1)[0]
    cluster = existing
    info = cluster.ensure(reporter, recreate=options.recreate)
    if options.preload:
        from gitops_lab.adapters.images import load_images

        load_images(images, cluster, reporter, environment_dir(name) / "images")
    return str(info.kubeconfig), info.context, info.created


def _git_server(kube: Kube, name: str, reporter: Reporter, deadline: Deadline,
                result: UpResult) -> tuple[str, str, GitAuth, GitAuth]:
    """Start the in-cluster Git server; the CLI pushes as the writer, engines fetch as the reader."""
    from gitops_lab.adapters.gitserver.incluster import InClusterGitServer
    from gitops_lab.kube.apply import Applier
    from gitops_lab.kube.rollout import rollout_verdict
    from gitops_lab.kube.wait import wait_for

    server = InClusterGitServer(name)
    applier = Applier(kube)
    with reporter.step(f"Starting the Git server (up to {deadline.describe()})") as step:
        result.changed += applier.apply_changed(server.manifests())
        namespace = server.settings.namespace
        wait_for(applier, "apps/v1", "Deployment", "gitserver", namespace, rollout_verdict, deadline,
                 f"the Git server Deployment {namespace}/gitserver to be Available",
                 on_progress=step.update)
        server.wait_reachable_from_host(deadline, on_progress=step.update)
        step.done(server.endpoints().host_url)
    credentials = server.credentials()
    endpoints = server.endpoints()
    # The CLI's own git commands push as the writer, the engines fetch as the reader.
    return endpoints.host_url, endpoints.cluster_url, credentials.writer, credentials.reader


def _served_commit(seeded, reporter: Reporter) -> str:
    """The commit the engines serve: the remote's.

    A learner may have pushed since the working copy was made: the engines follow
    the remote, so the working copy catches up first (fast-forward only) and the
    wait is for the remote's head, never for a commit the remote lacks.
    """
    from gitops_lab.adapters.repo.publish import REMOTE_BRANCH, catch_up
    from gitops_lab.errors import GitError

    git = Git(seeded.path)
    if seeded.action != "reused" or not git.remote_url():
        return git.head()
    try:
        catch_up(git, unpublished="keep")  # a learner's unpushed commits are theirs to push
    except GitError as exc:
        reporter.warn(f"the working copy could not follow the remote ({exc.message}); "
                      "waiting for what the remote has")
    return git.out("rev-parse", REMOTE_BRANCH)

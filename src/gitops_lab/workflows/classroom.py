"""A class: many learners on one shared cluster, each an isolated tenant.

The instructor's side lives in the state folder of the environment name
(``--name``, default gitops-lab)::

    <name>/class/class.json              the class: engine, cluster, Git server, learners
    <name>/class/credentials.json        Git users (0600): instructor, engines, each learner
    <name>/class/learners/<learner>/     the instructor's view of a learner: state.json
                                         (a tenant environment), repo/ (a clone), labs.json
    <name>/class/kits/<learner>/         the learner kit: kubeconfig and kit.json (0600)
    <name>/class/backups/                repository bundles kept by `class delete`

A learner's environment is an ordinary EnvironmentState whose ``tenant`` names
the learner: every command (status, promote, rollback, lab ...) runs unchanged
on it, for the instructor here and for the learner after `class join`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.base import RepoAccess
from gitops_lab.adapters.engines.tenancy import (
    ADMISSION_POLICY,
    LEARNER_ACCOUNT,
    check_learner_name,
    class_objects,
    engine_registration,
    tenant_namespaces,
    tenant_objects,
)
from gitops_lab.adapters.gitserver.base import ClassCredentials, GitServer, RepoGrant
from gitops_lab.adapters.gitserver.incluster import Credentials, GitServerCredentials, new_password
from gitops_lab.adapters.repo.git import Git, authenticated
from gitops_lab.adapters.repo.layout import ENVIRONMENTS, RepoLayout, overlay_path
from gitops_lab.adapters.repo.pushed import follow_pushed
from gitops_lab.adapters.repo.seed import SEED_TAG, init_working_copy
from gitops_lab.errors import GitError, GitOpsLabError, NotFound, UsageError
from gitops_lab.kube.client import Kube, check_reachable, connect
from gitops_lab.kube.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.resources import environments_template
from gitops_lab.state import EnvironmentState, environment_dir, load_state, write_private_json, write_private_text
from gitops_lab.workflows.environment import LabEnvironment, open_environment, targets_for
from gitops_lab.workflows.converge import converge

CLASS_DIR = "class"
KIT_FILE = "kit.json"
DEFAULT_KIT_DAYS = 30
STATUS_READERS = 8


# -- where things are --------------------------------------------------------------
def class_dir(name: str) -> Path:
    return environment_dir(name) / CLASS_DIR


def learner_env_name(name: str, learner: str) -> str:
    """The environment name of the instructor's view of ``learner`` (a folder under the class)."""
    return f"{name}/{CLASS_DIR}/learners/{learner}"


def class_file(name: str) -> Path:
    """The class record (class.json); it exists while a class lives in the environment."""
    return class_dir(name) / "class.json"


def kit_dir(name: str, learner: str) -> Path:
    return class_dir(name) / "kits" / learner


# -- the class record ------------------------------------------------------------------
@dataclass
class GitServerRecord:
    """The class's Git server: ``folder`` (a folder of bare repositories you serve) or
    ``in-cluster`` (gitops-lab's server in the cluster, one per class)."""

    kind: str = "folder"
    root: str = ""
    base_url: str = ""
    engine_base_url: str | None = None
    auth_file: str | None = None
    node_port: int | None = None

    def server(self, class_name: str, kube: Kube | None = None, deadline: Deadline | None = None) -> GitServer:
        """The server; without ``kube`` only to check the options (an in-cluster one needs the cluster)."""
        if self.kind == "in-cluster":
            from gitops_lab.adapters.gitserver.clusterclass import DEFAULT_NODE_PORT, ClusterClassGitServer

            return ClusterClassGitServer(
                class_name, kube, self.base_url or None, self.node_port or DEFAULT_NODE_PORT, deadline=deadline
            )
        from gitops_lab.adapters.gitserver.folder import FolderGitServer

        return FolderGitServer(
            Path(self.root), self.base_url, self.engine_base_url, Path(self.auth_file) if self.auth_file else None
        )


def git_server_record(
    kind: str | None,
    root: str | None,
    base_url: str | None,
    engine_base_url: str | None,
    node_port: int | None,
    auth_file: str | None,
) -> GitServerRecord:
    """The Git server options of `class create`, checked: in-cluster unless a folder is named."""
    kind = kind or ("folder" if root else "in-cluster")
    if kind == "folder":
        missing = [flag for flag, value in (("--git-root", root), ("--git-base-url", base_url)) if not value]
        if missing:
            raise UsageError(
                f"a folder Git server needs {' and '.join(missing)}",
                fix="pass the folder your Git server serves and its URL, or leave out --git-server folder "
                "to run the server in the cluster",
            )
        if node_port:
            raise UsageError("--git-node-port is for the in-cluster Git server", fix="leave it out with --git-root")
        return GitServerRecord(
            "folder",
            str(Path(root or ".").expanduser().resolve()),
            base_url or "",
            engine_base_url,
            str(Path(auth_file).expanduser().resolve()) if auth_file else None,
        )
    wrong = [
        flag
        for flag, value in (
            ("--git-root", root),
            ("--git-auth-file", auth_file),
            ("--git-engine-base-url", engine_base_url),
        )
        if value
    ]
    if wrong:
        raise UsageError(
            f"{', '.join(wrong)} name a Git server of your own, not the in-cluster one",
            fix="leave them out, or pass --git-server folder",
        )
    return GitServerRecord("in-cluster", base_url=base_url or "", node_port=node_port)


@dataclass
class ClassRecord:
    name: str
    engine: str
    kubeconfig: str | None
    context: str | None
    git: GitServerRecord
    learners: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return class_file(self.name)

    def save(self) -> None:
        write_private_json(self.path, asdict(self), mode=0o644)


def load_class(name: str) -> ClassRecord:
    path = class_file(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(
            f"no class is set up under the environment name {name!r} (no {path})",
            fix="create one with `gitops-lab class create`",
        ) from None
    except json.JSONDecodeError as exc:
        raise NotFound(
            f"the class file {path} is not valid JSON ({exc.msg})",
            fix="delete the class folder and run `gitops-lab class create` again",
        ) from exc
    data["git"] = GitServerRecord(**data.get("git") or {})
    return ClassRecord(**data)


def load_or_create_users(name: str, learners: list[str]) -> tuple[ClassCredentials, dict[str, Credentials]]:
    """The class's Git users, generated on first use and kept (0600) so re-runs reuse them."""
    path = class_dir(name) / "credentials.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    fresh = lambda user: {"username": user, "password": new_password()}  # noqa: E731
    data.setdefault("instructor", fresh("instructor"))
    data.setdefault("engine", fresh("engine"))
    learner_data = data.setdefault("learners", {})
    for learner in learners:
        learner_data.setdefault(learner, fresh(learner))
    write_private_json(path, data, mode=0o600)
    users = ClassCredentials(Credentials(**data["instructor"]), Credentials(**data["engine"]))
    return users, {k: Credentials(**v) for k, v in learner_data.items()}


def pushing_as(creds: Credentials) -> contextlib.AbstractContextManager:
    """The CLI's git commands authenticate as ``creds`` inside the block (see adapters/repo/git.py)."""
    return authenticated(creds)


# -- learners ---------------------------------------------------------------------------
def learners_from(file: str | None, count: int | None, prefix: str = "learner") -> list[str]:
    """Learner names from a file (one per line, # comments) or ``prefix-01`` .. ``prefix-NN``."""
    if bool(file) == bool(count):
        raise UsageError("say who is in the class", fix="pass either --learners FILE or --count N")
    if file:
        try:
            lines = Path(file).expanduser().read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(
                f"cannot read the learners file {file}: {exc.strerror}", fix="pass a file with one learner name a line"
            ) from exc
        names = [line.split("#", 1)[0].strip().lower() for line in lines]
        names = [n for n in names if n]
    else:
        names = [f"{prefix}-{i:02d}" for i in range(1, (count or 0) + 1)]
    problems = []
    for n in names:
        try:
            check_learner_name(n)
        except UsageError as exc:
            problems.append(exc.message)
    if problems:
        raise UsageError("; ".join(problems), fix="use lower-case letters, digits and '-' (a DNS label)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"learners named twice: {', '.join(dupes)}", fix="give every learner their own name")
    if not names:
        raise UsageError(f"the learners file {file} names nobody", fix="write one learner name a line")
    return names


def tenant_template(dest: Path, learner: str) -> Path:
    """The lab template with every overlay pointed at the learner's namespaces.

    The Namespace objects are dropped: the instructor makes a tenant's
    namespaces, and neither engine may create one for a tenant.
    """
    shutil.copytree(environments_template(), dest, ignore=shutil.ignore_patterns(".keep", "__pycache__", "*.pyc"))
    layout = RepoLayout(dest)
    for env, namespace in tenant_namespaces(learner).items():
        path = dest / overlay_path(env)
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^\s*-\s*namespace\.yaml\s*\n", "", text, flags=re.MULTILINE)
        path.write_text(text.replace(layout.namespace(env), namespace), encoding="utf-8")
        (path.parent / "namespace.yaml").unlink(missing_ok=True)
    return dest


# -- create -----------------------------------------------------------------------------
@dataclass
class ClassOptions:
    engine: str = "argocd"
    engine_install: str = "external"
    kubeconfig: str | None = None
    context: str | None = None
    git: GitServerRecord = field(default_factory=GitServerRecord)
    kit_days: int = DEFAULT_KIT_DAYS
    timeout: float = 900


@dataclass
class ClassResult:
    name: str
    engine: str
    learners: list[str] = field(default_factory=list)
    kits: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    git_enforces_access: bool = False
    git_server: str = ""  # where learners reach the repositories, and what kind of server it is
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def create(name: str, learners: list[str], options: ClassOptions, reporter: Reporter) -> ClassResult:
    """Create (or extend, or re-check) a class: a tenant, a repository and a kit per learner."""
    started = time.monotonic()
    deadline = Deadline(options.timeout)
    previous = _load_class_or_none(name)
    if previous and previous.engine != options.engine:
        raise UsageError(
            f"the class {name!r} runs {previous.engine}, not {options.engine}",
            fix=f"use --engine {previous.engine}, or `gitops-lab class delete` first",
        )
    if previous and previous.git.kind != options.git.kind:
        where = previous.git.root if previous.git.kind == "folder" else "in the cluster"
        raise UsageError(
            f"the class {name!r} keeps its repositories on a {previous.git.kind} Git server ({where}), "
            f"not a {options.git.kind} one",
            fix="pass the same Git server options as when you created it, or `gitops-lab class delete` first",
        )
    if previous and previous.git.kind == "in-cluster":
        # a re-run keeps the address learners were given unless told otherwise
        options.git.base_url = options.git.base_url or previous.git.base_url
        options.git.node_port = options.git.node_port or previous.git.node_port
    everyone = sorted(set(previous.learners if previous else []) | set(learners))
    record = ClassRecord(name, options.engine, options.kubeconfig, options.context, options.git, everyone)
    result = ClassResult(name, options.engine, learners=list(learners))
    options.git.server(name)  # checks the Git options before anything is touched
    kube = _connect(record, reporter)
    server = options.git.server(name, kube, deadline)
    engine = engine_for(options.engine, kube)
    with reporter.step(f"{'Installing' if options.engine_install == 'managed' else 'Checking'} {engine.display_name}"):
        engine.install(options.engine_install, reporter, deadline)
    result.git_enforces_access = server.enforces_access
    users, learner_users = load_or_create_users(name, everyone)
    title = f"Preparing {len(everyone)} repositories on the Git server"
    if server.kind == "in-cluster":
        title = f"Starting the class's Git server with {len(everyone)} repositories (up to {deadline.describe()})"
    with reporter.step(title) as step:
        server.on_progress = step.update
        changed = server.provision([RepoGrant(learner, learner_users[learner]) for learner in everyone], users)
        result.changed += changed
        record.git.base_url = server.url()
        result.git_server = f"{record.git.base_url} ({server.describe()})"
        step.done(
            f"{len(changed)} changes at {record.git.base_url}" if changed else f"no change at {record.git.base_url}"
        )
    with reporter.step("Applying the class's role and admission policy") as step:
        changed = engine.applier.apply_changed(class_objects(name))
        result.changed += changed
        _wait_policy_loaded(engine.applier, deadline)
        step.done(f"{len(changed)} changed" if changed else "no change")
    record.save()
    with pushing_as(users.writer):
        for learner in learners:
            with reporter.step(f"Creating the tenant of {learner}") as step:
                changed = _create_tenant(record, learner, kube, server, users)
                result.kits[learner] = str(
                    _write_kit(record, learner, kube, server, learner_users[learner], options.kit_days)
                )
                result.changed += changed
                step.done(f"{len(changed)} changed" if changed else "no change")
        for learner in learners:
            lab = open_learner(record, learner, kube)
            with reporter.step(f"Waiting up to {deadline.describe()} for {learner}'s dev, staging and prod") as step:
                try:
                    # What the learner pushed since an earlier `class create` is what must be served.
                    git = Git(lab.repo)
                    converge(
                        lab, ENVIRONMENTS, git.out("rev-parse", follow_pushed(git, tags=True)), deadline, Reporter()
                    )
                except GitOpsLabError as exc:
                    raise type(exc)(f"{learner}: {exc.message}", exc.fix) from exc
                step.done("all three serve what Git says")
    result.seconds = round(time.monotonic() - started, 2)
    return result


def _create_tenant(
    record: ClassRecord, learner: str, kube: Kube, server: GitServer, users: ClassCredentials
) -> list[str]:
    engine = engine_for(record.engine, kube, learner)
    changed = engine.applier.apply_changed(tenant_objects(record.name, learner, engine))
    env_name = learner_env_name(record.name, learner)
    repo_path = environment_dir(env_name) / "repo"
    urls = server.endpoints(learner)
    with tempfile.TemporaryDirectory(dir=class_dir(record.name), prefix=".template-") as tmp:
        seeded = init_working_copy(repo_path, urls.host_url, template=tenant_template(Path(tmp) / "t", learner))
    if seeded.changed:
        changed.append(f"repository {seeded.action}")
    access = RepoAccess(url=urls.cluster_url, username=users.reader.username, password=users.reader.password)
    changed += engine.register(targets_for(RepoLayout(seeded.path)), access)
    state = EnvironmentState(
        name=env_name,
        repo_path=str(seeded.path),
        remote_url=urls.host_url,
        provider="existing",
        engine=record.engine,
        engine_install="external",
        kubeconfig=record.kubeconfig or kube.kubeconfig,
        context=record.context,
        engine_repo_url=urls.cluster_url,
        tenant=learner,
    )
    state.save()
    return changed


def _wait_policy_loaded(applier, deadline: Deadline) -> None:
    """Until the API server has read the admission policy (it loads policies through an informer)."""
    from gitops_lab.kube.wait import wait_for

    def verdict(policy: dict[str, Any] | None) -> tuple[bool, str]:
        if policy is None:
            return False, "the policy does not exist"
        seen = (policy.get("status") or {}).get("observedGeneration")
        return seen == policy["metadata"].get("generation"), f"observed generation {seen}"

    wait_for(
        applier,
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        ADMISSION_POLICY,
        None,
        verdict,
        deadline,
        f"the admission policy {ADMISSION_POLICY} to be loaded",
    )


def refuse_while_class_exists(name: str) -> None:
    """`down` would take the learners' repositories (on the cluster) and their kits with it."""
    path = class_file(name)
    if path.exists():
        raise GitOpsLabError(
            f"a class lives in the environment {name!r} ({path}): deleting it would lose every learner's "
            "repository and kit",
            fix="run `gitops-lab class delete` first (it bundles every learner's repository), then this again",
        )


def _load_class_or_none(name: str) -> ClassRecord | None:
    try:
        return load_class(name)
    except NotFound:
        return None


def _connect(record: ClassRecord, reporter: Reporter) -> Kube:
    with reporter.step("Connecting to the cluster") as step:
        kube = connect(record.kubeconfig, record.context)
        step.done(f"{kube.host}, Kubernetes {check_reachable(kube)}")
    return kube


def open_learner(record: ClassRecord, learner: str, kube: Kube | None = None) -> LabEnvironment:
    """The instructor's view of one learner's tenant: their engine objects, namespaces and a clone."""
    if learner not in record.learners:
        raise NotFound(
            f"there is no learner {learner!r} in the class {record.name!r}",
            fix=f"use one of: {', '.join(record.learners) or 'none'}",
        )
    state = load_state(learner_env_name(record.name, learner))
    if kube is None:
        return open_environment(state)
    return LabEnvironment(
        state, kube, engine_for(state.engine or record.engine, kube, state.tenant), Path(state.repo_path or ".")
    )


# -- the learner kit --------------------------------------------------------------------------
def _write_kit(record: ClassRecord, learner: str, kube: Kube, server: GitServer, creds: Credentials, days: int) -> Path:
    """kubeconfig (a ServiceAccount token good for ``days``) and kit.json, both 0600."""
    namespaces = tenant_namespaces(learner)
    token = kube.core().create_namespaced_service_account_token(
        LEARNER_ACCOUNT, namespaces["dev"], {"spec": {"expirationSeconds": days * 86400}}
    )
    folder = kit_dir(record.name, learner)
    cluster: dict[str, Any] = {"server": kube.host}
    ca = kube.api.configuration.ssl_ca_cert
    if ca:
        import base64

        cluster["certificate-authority-data"] = base64.b64encode(Path(ca).read_bytes()).decode()
    elif not kube.api.configuration.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    context = f"{record.name}-{learner}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": record.name, "cluster": cluster}],
        "users": [{"name": learner, "user": {"token": token.status.token}}],
        "contexts": [
            {"name": context, "context": {"cluster": record.name, "user": learner, "namespace": namespaces["dev"]}}
        ],
    }
    import yaml

    write_private_text(folder / "kubeconfig", yaml.safe_dump(kubeconfig, sort_keys=False), mode=0o600)
    urls = server.endpoints(learner)
    write_private_json(
        folder / KIT_FILE,
        {
            "class": record.name,
            "learner": learner,
            "engine": record.engine,
            "namespaces": namespaces,
            "git_url": urls.host_url,
            "engine_git_url": urls.cluster_url,
            "git_username": creds.username,
            "git_password": creds.password,
            "kubeconfig": "kubeconfig",
            "expires": token.status.expiration_timestamp.isoformat(),
        },
        mode=0o600,
    )
    return folder


@dataclass
class JoinResult:
    name: str
    learner: str
    repo_path: str
    clone_url: str
    namespaces: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def join(kit: Path, name: str, repo_path: str | None, reporter: Reporter) -> JoinResult:
    """The learner's side: make a lab environment of one's own out of a kit."""
    try:
        data = json.loads((kit / KIT_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{kit} is not a learner kit (no readable {KIT_FILE})",
            fix="pass the folder your instructor gave you, the one with kit.json and kubeconfig",
        ) from exc
    home = environment_dir(name)
    kubeconfig = home / "kubeconfig"
    write_private_text(kubeconfig, (kit / data.get("kubeconfig", "kubeconfig")).read_text(encoding="utf-8"))
    creds = Credentials(data["git_username"], data["git_password"])
    # Later commands push with these, as after `up` on kind (cli/app.py: Application.git_auth).
    write_private_json(home / "gitserver-credentials.json", GitServerCredentials(creds, creds).to_dict())
    path = Path(repo_path) if repo_path else home / "repo"
    with reporter.step(f"Cloning {data['git_url']}") as step, pushing_as(creds):
        seeded = init_working_copy(path, data["git_url"])
        step.done(seeded.action)
    EnvironmentState(
        name=name,
        repo_path=str(seeded.path),
        remote_url=data["git_url"],
        provider="existing",
        engine=data["engine"],
        engine_install="external",
        kubeconfig=str(kubeconfig),
        engine_repo_url=data.get("engine_git_url"),
        tenant=data["learner"],
    ).save()
    return JoinResult(name, data["learner"], str(seeded.path), data["git_url"], data["namespaces"])


# -- status ---------------------------------------------------------------------------------
@dataclass
class LearnerRow:
    learner: str
    lab: str | None
    step: str | None
    checks_passing: int
    steps: int
    environments: dict[str, dict[str, Any]]
    message: str = ""
    # Why the learner's repository could not be fetched ("" when it could): the row is as last fetched.
    git_problem: str = ""

    @property
    def healthy(self) -> bool:
        return not self.git_problem and all(e["state"] != "failing" for e in self.environments.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def status(name: str, reporter: Reporter, labs_root: Path, learners: list[str] | None = None) -> list[LearnerRow]:
    """One row per learner: the lab they are in, its first step whose checks do not pass yet, how
    many steps' checks pass in order, and each environment's health, read from Git and the cluster.

    Tenants are read side by side (STATUS_READERS at a time): each read mostly waits on the
    API server and the Git server.
    """
    from concurrent.futures import ThreadPoolExecutor

    record = load_class(name)
    chosen = learners or record.learners
    for learner in chosen:
        open_learner(record, learner)  # every name is checked before anything is read
    kube = _connect(record, reporter)
    users, _ = load_or_create_users(name, record.learners)
    with (
        pushing_as(users.writer),
        reporter.step(f"Reading {len(chosen)} tenants") as step,
        ThreadPoolExecutor(max_workers=STATUS_READERS) as pool,
    ):
        # worker threads start with an empty context: each read runs in a copy of this one (the Git credentials)
        parent = contextvars.copy_context()
        rows = list(pool.map(lambda learner: parent.copy().run(_learner_row, record, learner, kube, labs_root), chosen))
        step.done(f"{sum(r.healthy for r in rows)} of {len(rows)} healthy")
    return rows


def _learner_row(record: ClassRecord, learner: str, kube: Kube, labs_root: Path) -> LearnerRow:
    from gitops_lab.workflows.status import environment_reports

    lab_env = open_learner(record, learner, kube)
    git_problem = ""
    try:
        follow_pushed(Git(lab_env.repo), tags=True)
    except GitError as exc:
        git_problem = f"cannot fetch their repository, so Git is as last fetched: {exc.message}"
    environments = {
        r.environment: {
            "state": _env_state(r),
            "ok": r.ok,
            "version": r.version,
            "sync": r.sync,
            "health": r.health,
            "ready": f"{r.replicas_ready}/{r.replicas_desired}",
            "message": r.message,
        }
        for r in environment_reports(lab_env)
    }
    row = LearnerRow(learner, None, None, 0, 0, environments, git_problem=git_problem)
    _lab_progress(row, lab_env, labs_root)
    return row


def _env_state(report) -> str:
    """ok; reconciling (the engine is looking at Git again, which with many tenants is often the
    case at any moment, while the cluster serves what Git says); or failing."""
    if report.ok:
        return "ok"
    settled = (
        report.sync in ("Synced", "Applied")
        and report.replicas_ready >= report.replicas_desired > 0
        and report.version == (report.git_version or report.version)
    )
    return "reconciling" if settled and report.health in ("Unknown", "Progressing") else "failing"


def _lab_progress(row: LearnerRow, lab_env: LabEnvironment, labs_root: Path) -> None:
    """The learner's newest started lab (its start tag) and how far its checks pass."""
    from gitops_lab.errors import GitOpsLabError
    from gitops_lab.labs.runner import LabRunner

    git = Git(lab_env.repo)
    tags = git.out("for-each-ref", "--sort=-taggerdate", "--format=%(refname)", "refs/tags/gitops-lab/lab/")
    started = [ref.split("/")[4] for ref in tags.splitlines() if ref.endswith("/start") and ref.count("/") == 5]
    if not started:
        return
    row.lab = started[0]
    runner = LabRunner(lab_env.state.name, lab_env.repo, Reporter(), labs_root, lab_env.state)
    try:
        lab = runner.lab(row.lab)
    except GitOpsLabError as exc:
        row.message = exc.message
        return
    row.steps = len(lab.steps)
    ctx = runner.context_for(lab)
    ctx._environment = lab_env
    for step in lab.steps:
        try:
            ok, results = runner.evaluate(ctx, step)
        except GitOpsLabError as exc:
            ok, results = False, []
            row.message = exc.message
        if not ok:
            row.step = step.id
            row.message = row.message or "; ".join(r.message for r in results if not r.passed)
            return
        row.checks_passing += 1
    row.step = "done"


# -- reset ------------------------------------------------------------------------------------
@dataclass
class LearnerReset:
    learner: str
    lab: str | None
    commit: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reset(
    name: str, learners: list[str] | None, lab_id: str | None, reporter: Reporter, labs_root: Path, timeout: float
) -> list[LearnerReset]:
    """Back to a lab's start point (``lab_id``; started for learners who had not), or to the seed.

    Always by a new commit pushed to the learner's repository; their history stays.
    """
    from gitops_lab.adapters.repo import publish
    from gitops_lab.adapters.repo import trailers as t
    from gitops_lab.labs.actions import restore_tree
    from gitops_lab.labs.runner import LabRunner

    record = load_class(name)
    chosen = learners or record.learners
    for learner in chosen:
        open_learner(record, learner)  # every name is checked before anything changes
    kube = _connect(record, reporter)
    users, _ = load_or_create_users(name, record.learners)
    done = []
    with pushing_as(users.writer):
        for learner in chosen:
            lab_env = open_learner(record, learner, kube)
            git = Git(lab_env.repo)
            if lab_id:
                runner = LabRunner(lab_env.state.name, lab_env.repo, reporter, labs_root, lab_env.state, timeout)
                runner._environment = lab_env
                runner.start_fresh(runner.lab(lab_id), rerun_setup=False)
                done.append(LearnerReset(learner, lab_id, git.head()))
                continue
            with reporter.step(f"Restoring {learner}'s repository to {SEED_TAG}") as step:
                publish.catch_up(git)
                message = t.compose(
                    "Reset to the seed of the lab environments",
                    [(t.ACTION, "class-reset"), ("Restored-From", SEED_TAG)],
                    body="The instructor reset this learner's environments (`gitops-lab class reset`).",
                )
                commit = restore_tree(git, SEED_TAG, ["."], message, allow_empty=True) or git.head()
                publish.push(git)
                step.done(commit[:7])
            converge(lab_env, ENVIRONMENTS, commit, Deadline(timeout), reporter)
            done.append(LearnerReset(learner, None, commit))
    return done


# -- delete -----------------------------------------------------------------------------------
@dataclass
class DeleteResult:
    name: str
    learners: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def delete(name: str, reporter: Reporter, timeout: float) -> DeleteResult:
    """Back up every repository (a bundle in the class folder), then remove every tenant,
    the repositories, the kits and the class's own objects."""
    from gitops_lab.kube.wait import wait_deleted
    from gitops_lab.workflows.down import backup_repository

    record = load_class(name)
    kube = _connect(record, reporter)
    deadline = Deadline(timeout)
    users, _ = load_or_create_users(name, record.learners)
    result = DeleteResult(name)
    home = class_dir(name)
    server = record.git.server(name, kube, deadline)
    with pushing_as(users.writer):
        for learner in record.learners:
            with reporter.step(f"Deleting the tenant of {learner}") as step:
                engine = engine_for(record.engine, kube, learner)
                repo = environment_dir(learner_env_name(name, learner)) / "repo"
                if Git(repo).is_repo():
                    Git(repo).run("fetch", "--quiet", "--tags", "--force", "origin", check=False)
                    bundle = backup_repository(repo, home / "backups" / learner)
                    if bundle:
                        result.backups.append(str(bundle))
                # The engine's objects go first: Flux prunes as the tenant, whose rights go next.
                for api_version, kind, registered in engine_registration(learner, engine):
                    if engine.applier.delete(api_version, kind, registered, engine.namespace):
                        wait_deleted(
                            engine.applier,
                            api_version,
                            kind,
                            registered,
                            engine.namespace,
                            deadline,
                            f"{kind} {registered} to be deleted",
                        )
                for obj in reversed(tenant_objects(name, learner, engine)):
                    meta = obj["metadata"]
                    engine.applier.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
                server.remove([learner])
                shutil.rmtree(environment_dir(learner_env_name(name, learner)), ignore_errors=True)
                shutil.rmtree(kit_dir(name, learner), ignore_errors=True)
                result.learners.append(learner)
                step.done("namespaces deleting")
        # Until the namespaces are gone, a new class could not reuse the learners' names.
        with reporter.step(f"Waiting up to {deadline.describe()} for {len(record.learners) * 3} namespaces to go"):
            applier = engine_for(record.engine, kube).applier
            for learner in record.learners:
                for namespace in tenant_namespaces(learner).values():
                    wait_deleted(
                        applier,
                        "v1",
                        "Namespace",
                        namespace,
                        None,
                        deadline,
                        f"namespace {namespace} to be deleted",
                        "terminating",
                    )
    with reporter.step("Retiring the class's Git server") as step:
        server.on_progress = step.update
        step.done("; ".join(server.retire(users)) or "no change")
    with reporter.step("Removing the class's role, admission policy and records"):
        for obj in class_objects(name):
            applier.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        for entry in ("class.json", "credentials.json", "learners", "kits"):
            path = home / entry
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return result

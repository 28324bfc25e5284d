"""`class create`: the engine, the Git server with two repositories per learner (their lab
repository and their own platform repository), the class's own objects, then per learner a
tenant and a kit, then wait until every tenant serves what Git says.

Like `up` (workflows/up.py), `class create` runs STEPS in order, each a small
function of one CreateContext under its own status line, all under one
deadline. Each step checks what is there first, so a re-run (to add learners,
or to refresh kits) changes only what is missing.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.base import Engine
from gitops_lab.adapters.engines.tenancy import ADMISSION_POLICY, class_objects
from gitops_lab.adapters.gitserver.base import ClassCredentials, GitServer
from gitops_lab.adapters.gitserver.credentials import Credentials
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.adapters.repo.pushed import follow_pushed
from gitops_lab.classroom.kits import DEFAULT_KIT_DAYS, write_kit
from gitops_lab.classroom.record import (
    ClassRecord,
    GitServerRecord,
    connect_cluster,
    load_class_or_none,
    load_or_create_users,
    pushing_as,
)
from gitops_lab.classroom.tenant import create_tenant, learner_grants, learner_repositories, open_learner
from gitops_lab.errors import GitOpsLabError, UsageError
from gitops_lab.kube.client import Kube
from gitops_lab.deadline import Deadline, command_deadline
from gitops_lab.kube.wait import wait_for
from gitops_lab.reporter import NamedStep, Reporter, Step, run_steps
from gitops_lab.workflows.converge import converge


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


@dataclass
class CreateContext:
    """What every step of `class create` reads and fills in."""

    options: ClassOptions
    reporter: Reporter
    deadline: Deadline
    # The learners named this time; ``record.learners`` is the whole class, earlier learners included.
    learners: list[str]
    record: ClassRecord
    result: ClassResult
    kube: Kube | None = None
    engine: Engine | None = None
    server: GitServer | None = None
    users: ClassCredentials | None = None
    learner_users: dict[str, Credentials] = field(default_factory=dict)
    # What lasts until `class create` returns (the instructor's Git credentials).
    scope: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


CreateStep = NamedStep[CreateContext]


def check_options(name: str, options: ClassOptions, previous: ClassRecord | None) -> None:
    """Refuse what would change a class that exists, and check the Git options, before anything is touched.

    A re-run keeps the address learners were given (in-cluster server) unless told otherwise."""
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
        options.git.base_url = options.git.base_url or previous.git.base_url
        options.git.node_port = options.git.node_port or previous.git.node_port
    if previous and previous.git.kind == "gitea":
        options.git.forge_url = options.git.forge_url or previous.git.forge_url
        options.git.node_port = options.git.node_port or previous.git.node_port
    options.git.server(name)


def create(name: str, learners: list[str], options: ClassOptions, reporter: Reporter) -> ClassResult:
    """Create (or extend, or re-check) a class: a tenant, a repository and a kit per learner."""
    started = time.monotonic()
    previous = load_class_or_none(name)
    check_options(name, options, previous)
    everyone = sorted(set(previous.learners if previous else []) | set(learners))
    # the command's deadline, not only the steps': every git and API call below takes what is left of --timeout
    with command_deadline(options.timeout) as deadline:
        ctx = CreateContext(
            options,
            reporter,
            deadline,
            list(learners),
            ClassRecord(name, options.engine, options.kubeconfig, options.context, options.git, everyone),
            ClassResult(name, options.engine, learners=list(learners)),
        )
        with ctx.scope:
            run_steps(STEPS, ctx, reporter)
    ctx.result.seconds = round(time.monotonic() - started, 2)
    return ctx.result


def connect(ctx: CreateContext, status: Step) -> None:
    ctx.kube = kube = connect_cluster(ctx.record, ctx.reporter)
    ctx.server = ctx.options.git.server(ctx.record.name, kube, ctx.deadline)
    ctx.engine = engine_for(ctx.options.engine, kube)


def install_engine(ctx: CreateContext, status: Step) -> None:
    assert ctx.engine is not None
    ctx.engine.install(ctx.options.engine_install, ctx.reporter, ctx.deadline)


def load_users(ctx: CreateContext, status: Step) -> None:
    """The Git users of the whole class: kept from an earlier run, new ones for new learners."""
    assert ctx.server is not None
    ctx.result.git_enforces_access = ctx.server.enforces_access
    ctx.users, ctx.learner_users = load_or_create_users(ctx.record.name, ctx.record.learners)


def provision_repositories(ctx: CreateContext, status: Step) -> None:
    assert ctx.server is not None and ctx.users is not None
    server, record = ctx.server, ctx.record
    server.on_progress = status.update
    changed = server.provision(
        [grant for learner in record.learners for grant in learner_grants(learner, ctx.learner_users[learner])],
        ctx.users,
    )
    ctx.result.changed += changed
    record.git.base_url = server.url()
    forge = server.forge()
    if forge:  # peer review reads the class's own forge: `class reviews assign`, `class status`, `class report`
        record.git.forge_url, record.git.forge_credentials = forge[0], str(forge[1])
    ctx.result.git_server = f"{record.git.base_url} ({server.describe()})"
    status.done(
        f"{len(changed)} changes at {record.git.base_url}" if changed else f"no change at {record.git.base_url}"
    )


def apply_class_objects(ctx: CreateContext, status: Step) -> None:
    """The tenants' ClusterRole and the admission policy that keeps a kit off others' engine objects."""
    assert ctx.engine is not None
    changed = ctx.engine.applier.apply_changed(class_objects(ctx.record.name))
    ctx.result.changed += changed
    _wait_policy_loaded(ctx.engine, ctx.deadline)
    status.done(f"{len(changed)} changed" if changed else "no change")


def save_record(ctx: CreateContext, status: Step) -> None:
    ctx.record.save()


def create_tenants(ctx: CreateContext, status: Step) -> None:
    """Per learner named this time: their tenant and a fresh kit, each under its own status line."""
    assert ctx.kube is not None and ctx.server is not None and ctx.users is not None
    # From here to the end of `class create`, the CLI's own git commands push as the instructor.
    ctx.scope.enter_context(pushing_as(ctx.users.writer))
    for learner in ctx.learners:
        with ctx.reporter.step(f"Creating the tenant of {learner}") as step:
            changed = create_tenant(ctx.record, learner, ctx.kube, ctx.server, ctx.users)
            kit = write_kit(ctx.record, learner, ctx.kube, ctx.server, ctx.learner_users[learner], ctx.options.kit_days)
            ctx.result.kits[learner] = str(kit)
            ctx.result.changed += changed
            step.done(f"{len(changed)} changed" if changed else "no change")


def wait_until_served(ctx: CreateContext, status: Step) -> None:
    """Each new tenant's three environments serve what their repository's remote has."""
    assert ctx.kube is not None
    for learner in ctx.learners:
        lab = open_learner(ctx.record, learner, ctx.kube)
        title = f"Waiting up to {ctx.deadline.describe()} for {learner}'s dev, staging and prod"
        with ctx.reporter.step(title) as step:
            try:
                # What the learner pushed since an earlier `class create` is what must be served.
                git = Git(lab.repo)
                converge(
                    lab, ENVIRONMENTS, git.out("rev-parse", follow_pushed(git, tags=True)), ctx.deadline, Reporter()
                )
            except GitOpsLabError as exc:
                raise type(exc)(f"{learner}: {exc.message}", exc.fix) from exc
            step.done("all three serve what Git says")


def _install_title(ctx: CreateContext) -> str:
    assert ctx.engine is not None
    return f"{'Installing' if ctx.options.engine_install == 'managed' else 'Checking'} {ctx.engine.display_name}"


def _provision_title(ctx: CreateContext) -> str:
    assert ctx.server is not None
    count = sum(len(learner_repositories(learner)) for learner in ctx.record.learners)  # lab and platform
    if ctx.server.kind == "gitea":
        return f"Starting the class's Gitea with {count} repositories (up to {ctx.deadline.describe()})"
    if ctx.server.kind == "in-cluster":
        return f"Starting the class's Git server with {count} repositories (up to {ctx.deadline.describe()})"
    return f"Preparing {count} repositories on the Git server"


STEPS = (
    CreateStep("connect", connect),
    CreateStep("install the engine", install_engine, _install_title),
    CreateStep("load the Git users", load_users),
    CreateStep("provision the repositories", provision_repositories, _provision_title),
    CreateStep(
        "apply the class's objects",
        apply_class_objects,
        lambda ctx: "Applying the class's role and admission policy",
    ),
    CreateStep("save the class record", save_record),
    CreateStep("create the tenants", create_tenants),
    CreateStep("wait until served", wait_until_served),
)


def _wait_policy_loaded(engine: Engine, deadline: Deadline) -> None:
    """Until the API server has read the admission policy (it loads policies through an informer)."""

    def verdict(policy: dict[str, Any] | None) -> tuple[bool, str]:
        if policy is None:
            return False, "the policy does not exist"
        seen = (policy.get("status") or {}).get("observedGeneration")
        return seen == policy["metadata"].get("generation"), f"observed generation {seen}"

    wait_for(
        engine.applier,
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        ADMISSION_POLICY,
        None,
        verdict,
        deadline,
        f"the admission policy {ADMISSION_POLICY} to be loaded",
    )

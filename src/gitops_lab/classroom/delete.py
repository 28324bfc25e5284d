"""`class delete`: bundle every learner's repositories (lab and platform), then remove every tenant, the
repositories, the kits, the class's Git server and its own objects.

Like `class create`, a list of named STEPS on one DeleteContext, under one deadline.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import asdict, dataclass, field
from typing import Any

from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.tenancy import class_objects, tenant_namespaces
from gitops_lab.adapters.gitserver.base import ClassCredentials, GitServer
from gitops_lab.classroom.record import (
    ClassRecord,
    class_dir,
    connect_cluster,
    load_class,
    load_or_create_users,
    pushing_as,
)
from gitops_lab.classroom.tenant import delete_tenant
from gitops_lab.kube.client import Kube
from gitops_lab.deadline import Deadline, command_deadline
from gitops_lab.kube.wait import wait_deleted
from gitops_lab.reporter import NamedStep, Reporter, Step, run_steps


@dataclass
class DeleteResult:
    name: str
    learners: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeleteContext:
    """What every step of `class delete` reads and fills in."""

    record: ClassRecord
    reporter: Reporter
    deadline: Deadline
    result: DeleteResult
    kube: Kube | None = None
    server: GitServer | None = None
    users: ClassCredentials | None = None
    scope: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


DeleteStep = NamedStep[DeleteContext]


def delete(name: str, reporter: Reporter, timeout: float) -> DeleteResult:
    """Back up every repository (a bundle in the class folder), then remove every tenant,
    the repositories, the kits and the class's own objects."""
    record = load_class(name)
    # the command's deadline: the fetches before the bundles and every API call take what is left of --timeout
    with command_deadline(timeout) as deadline:
        ctx = DeleteContext(record, reporter, deadline, DeleteResult(name))
        with ctx.scope:
            run_steps(STEPS, ctx, reporter)
    return ctx.result


def connect(ctx: DeleteContext, status: Step) -> None:
    ctx.kube = kube = connect_cluster(ctx.record, ctx.reporter)
    ctx.users, _ = load_or_create_users(ctx.record.name, ctx.record.learners)
    ctx.server = ctx.record.git.server(ctx.record.name, kube, ctx.deadline)
    # Fetching a learner's repository before it is bundled takes the instructor's credentials.
    ctx.scope.enter_context(pushing_as(ctx.users.writer))


def delete_tenants(ctx: DeleteContext, status: Step) -> None:
    """Per learner, under its own status line: bundle, then the tenant goes (its namespaces start deleting)."""
    assert ctx.kube is not None and ctx.server is not None
    backups = class_dir(ctx.record.name) / "backups"
    for learner in ctx.record.learners:
        with ctx.reporter.step(f"Deleting the tenant of {learner}") as step:
            bundles = delete_tenant(ctx.record, learner, ctx.kube, ctx.server, ctx.deadline, backups)
            ctx.result.backups += [str(bundle) for bundle in bundles]
            ctx.result.learners.append(learner)
            step.done("namespaces deleting")


def wait_namespaces_gone(ctx: DeleteContext, status: Step) -> None:
    """Until the namespaces are gone, a new class could not reuse the learners' names."""
    assert ctx.kube is not None
    applier = engine_for(ctx.record.engine, ctx.kube).applier
    for learner in ctx.record.learners:
        for namespace in tenant_namespaces(learner).values():
            wait_deleted(
                applier,
                "v1",
                "Namespace",
                namespace,
                None,
                ctx.deadline,
                f"namespace {namespace} to be deleted",
                "terminating",
            )


def retire_git_server(ctx: DeleteContext, status: Step) -> None:
    assert ctx.server is not None and ctx.users is not None
    ctx.server.on_progress = status.update
    status.done("; ".join(ctx.server.retire(ctx.users)) or "no change")


def remove_class(ctx: DeleteContext, status: Step) -> None:
    """The class's ClusterRole and admission policy, then its records (the bundles stay)."""
    assert ctx.kube is not None
    applier = engine_for(ctx.record.engine, ctx.kube).applier
    for obj in class_objects(ctx.record.name):
        applier.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
    home = class_dir(ctx.record.name)
    for entry in ("class.json", "credentials.json", "learners", "kits"):
        path = home / entry
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


STEPS = (
    DeleteStep("connect", connect),
    DeleteStep("delete the tenants", delete_tenants),
    DeleteStep(
        "wait until the namespaces are gone",
        wait_namespaces_gone,
        lambda ctx: f"Waiting up to {ctx.deadline.describe()} for {len(ctx.record.learners) * 3} namespaces to go",
    ),
    DeleteStep("retire the Git server", retire_git_server, lambda ctx: "Retiring the class's Git server"),
    DeleteStep(
        "remove the class",
        remove_class,
        lambda ctx: "Removing the class's role, admission policy and records",
    ),
)

"""One learner's tenant: their repository template, their objects, engine registration and
repository, their platform repository, the instructor's view of it (a lab environment), and its removal."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.base import RepoAccess
from gitops_lab.adapters.engines.tenancy import engine_registration, tenant_namespaces, tenant_objects
from gitops_lab.adapters.gitserver.base import ClassCredentials, GitServer, RepoGrant
from gitops_lab.adapters.gitserver.credentials import Credentials
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import RepoLayout, overlay_path
from gitops_lab.adapters.repo.platform import PLATFORM_REPOSITORY, platform_repository, seed_platform
from gitops_lab.adapters.repo.pushed import fetch_everything
from gitops_lab.adapters.repo.seed import init_working_copy
from gitops_lab.classroom.record import ClassRecord, class_dir, kit_dir, learner_env_name
from gitops_lab.errors import NotFound
from gitops_lab.kube.client import Kube
from gitops_lab.deadline import Deadline
from gitops_lab.kube.wait import wait_deleted
from gitops_lab.resources import environments_template
from gitops_lab.state import EnvironmentState, environment_dir, load_state
from gitops_lab.workflows.down import backup_repository, bundle_remote
from gitops_lab.workflows.environment import LabEnvironment, open_environment, targets_for


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


def learner_repositories(learner: str) -> tuple[str, str]:
    """The learner's repositories on the class's Git server: their lab repository and, beside it, their
    own platform repository (the ci-templates lab releases a version of it), found by
    adapters/repo/platform.py ``platform_remote_beside`` from the lab repository and the tenant."""
    return learner, platform_repository(learner)


def learner_grants(learner: str, creds: Credentials) -> list[RepoGrant]:
    """The learner pushes to both of their repositories, and to nobody else's."""
    return [RepoGrant(repository, creds) for repository in learner_repositories(learner)]


def seed_learner_platform(server: GitServer, learner: str) -> list[str]:
    """The learner's platform repository at v1.0.0, as `up` seeds ml-platform-pipelines; a repository
    that has it already is left as it is (the learner's releases stay). Returns what changed."""
    _, platform = learner_repositories(learner)
    if seed_platform(server.endpoints(platform).host_url) == "seeded":
        return [f"platform repository {platform} seeded"]
    return []


def create_tenant(
    record: ClassRecord, learner: str, kube: Kube, server: GitServer, users: ClassCredentials
) -> list[str]:
    """The learner's objects, their seeded repository and platform repository, its registration with the
    engine, and the instructor's view of it (a tenant environment). Returns what changed."""
    engine = engine_for(record.engine, kube, learner)
    changed = engine.applier.apply_changed(tenant_objects(record.name, learner, engine))
    env_name = learner_env_name(record.name, learner)
    repo_path = environment_dir(env_name) / "repo"
    urls = server.endpoints(learner)
    with tempfile.TemporaryDirectory(dir=class_dir(record.name), prefix=".template-") as tmp:
        seeded = init_working_copy(repo_path, urls.host_url, template=tenant_template(Path(tmp) / "t", learner))
    if seeded.changed:
        changed.append(f"repository {seeded.action}")
    changed += seed_learner_platform(server, learner)
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


def delete_tenant(
    record: ClassRecord, learner: str, kube: Kube, server: GitServer, deadline: Deadline, backups: Path
) -> list[Path]:
    """Bundle the learner's repository and their platform repository into ``backups``, then remove
    their engine objects, their objects, their repositories, the instructor's view and their kit.
    Returns the bundles made.

    The namespaces are left deleting (the caller waits for them, all at once)."""
    engine = engine_for(record.engine, kube, learner)
    repo = environment_dir(learner_env_name(record.name, learner)) / "repo"
    bundles = []
    git = Git(repo)
    if git.is_repo():
        fetch_everything(git)  # what the learner pushed, so the bundle has it too
        bundles.append(backup_repository(repo, backups / learner))
    # Their platform repository has no clone here: bundled from the server (none in a class older than it).
    bundles.append(
        bundle_remote(
            server.endpoints(learner_repositories(learner)[1]).host_url, backups / learner, PLATFORM_REPOSITORY
        )
    )
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
    for obj in reversed(tenant_objects(record.name, learner, engine)):
        meta = obj["metadata"]
        engine.applier.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    server.remove(list(learner_repositories(learner)))
    shutil.rmtree(environment_dir(learner_env_name(record.name, learner)), ignore_errors=True)
    shutil.rmtree(kit_dir(record.name, learner), ignore_errors=True)
    return [bundle for bundle in bundles if bundle]

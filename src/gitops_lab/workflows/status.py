"""What each environment runs: the engine's view and the Deployment's."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from gitops_lab.adapters.repo.layout import ENVIRONMENTS, VERSION_LABEL
from gitops_lab.errors import EngineError
from gitops_lab.workflows.environment import LabEnvironment
from gitops_lab.workflows.rollout import DEPLOYMENT


@dataclass
class EnvironmentReport:
    environment: str
    namespace: str
    engine: str
    commit: str | None
    sync: str
    health: str
    version: str | None
    # The version Git names for the environment at the commit the engine applied.
    git_version: str | None
    replicas_ready: int
    replicas_desired: int
    message: str

    @property
    def ok(self) -> bool:
        return self.sync in ("Synced", "Applied") and self.health in ("Healthy", "Ready") and \
            self.replicas_ready >= self.replicas_desired > 0 and self.version == (self.git_version or self.version)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def environment_reports(lab: LabEnvironment) -> list[EnvironmentReport]:
    reports = []
    for env in ENVIRONMENTS:
        namespace = lab.namespace(env)
        try:
            state = lab.engine.status(env)
            commit, sync, health, message = state.revision, state.sync_state, state.health_state, state.message
        except EngineError as exc:
            commit, sync, health, message = None, "Missing", "Unknown", exc.message
        dep = lab.engine.applier.get("apps/v1", "Deployment", DEPLOYMENT, namespace) or {}
        spec, status = dep.get("spec", {}), dep.get("status", {}) or {}
        version = spec.get("template", {}).get("metadata", {}).get("labels", {}).get(VERSION_LABEL)
        git_version = _version_in_git(lab, env, commit)
        if not dep and not message:
            message = f"Deployment {namespace}/{DEPLOYMENT} not found"
        elif git_version and version != git_version:
            message = f"drift: the cluster runs {version}, Git says {git_version}; `gitops-lab sync --env {env}` heals it"
        reports.append(EnvironmentReport(
            environment=env, namespace=namespace, engine=lab.engine.name, commit=commit, sync=sync, health=health,
            version=version, git_version=git_version, replicas_ready=status.get("readyReplicas", 0) or 0,
            replicas_desired=spec.get("replicas", 0) if dep else 0, message=message,
        ))
    return reports


def _version_in_git(lab: LabEnvironment, env: str, commit: str | None) -> str | None:
    """The model version the overlay names at ``commit`` (or in the working copy)."""
    from gitops_lab.adapters.repo.git import Git
    from gitops_lab.adapters.repo.layout import overlay_path, version_in_text

    if commit:
        shown = Git(lab.repo).run("show", f"{commit}:{overlay_path(env)}", check=False)
        if shown.returncode == 0:
            return version_in_text(shown.stdout, overlay_path(env))
    return lab.layout.model_version(env)

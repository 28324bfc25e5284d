"""Open a lab environment that `up` set up: its cluster, engine and working copy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.base import Engine, EnvironmentTarget
from gitops_lab.adapters.repo.layout import ENVIRONMENTS, RepoLayout, overlay_path
from gitops_lab.errors import UsageError
from gitops_lab.kube.client import Kube, connect
from gitops_lab.state import EnvironmentState


@dataclass
class LabEnvironment:
    state: EnvironmentState
    kube: Kube
    engine: Engine
    repo: Path

    @property
    def layout(self) -> RepoLayout:
        return RepoLayout(self.repo)

    def namespace(self, env: str) -> str:
        return self.layout.namespace(env)


def targets_for(layout: RepoLayout) -> list[EnvironmentTarget]:
    return [
        EnvironmentTarget(name=env, namespace=layout.namespace(env), path=str(Path(overlay_path(env)).parent))
        for env in ENVIRONMENTS
    ]


def open_environment(
    state: EnvironmentState, kubeconfig: str | None = None, context: str | None = None, repo: Path | None = None
) -> LabEnvironment:
    """The environment described by ``state``; --kubeconfig/--context override it."""
    if not state.engine:
        raise UsageError(
            f"the environment {state.name!r} has no engine yet (only a repository was set up)",
            fix="run `gitops-lab up` first (promote and rollback work without it, with --no-wait)",
        )
    kube = connect(kubeconfig or state.kubeconfig, context or state.context)
    path = repo or Path(state.repo_path or ".")
    return LabEnvironment(state, kube, engine_for(state.engine, kube, state.tenant), path)


def open_if_set_up(
    state: EnvironmentState | None, kubeconfig: str | None = None, context: str | None = None, repo: Path | None = None
) -> LabEnvironment | None:
    """The environment `up` set up, or None when there is none (or only a repository): nothing to wait on."""
    if state is None or not state.engine:
        return None
    return open_environment(state, kubeconfig, context, repo)

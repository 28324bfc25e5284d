"""What each environment runs: the engine's view and the Deployment's, and how it drifts from Git.

Drift here is configuration drift: the live Deployment differs from what Git
sets for it (model version, replicas, container images). ``status`` and the
lab checks read it with the same two functions, ``git_expectation`` and
``drift``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.adapters.images import apply_kustomize_images
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import (
    DEPLOYMENT,
    ENVIRONMENTS,
    VERSION_LABEL,
    overlay_yaml,
)
from gitops_lab.adapters.repo.pushed import fetch_pushed
from gitops_lab.adapters.repo.snapshot import RepoSnapshot
from gitops_lab.errors import DamagedFile, EngineError, GitError
from gitops_lab.textfiles import yaml_loader
from gitops_lab.workflows.environment import LabEnvironment


@dataclass
class GitExpectation:
    """What Git sets for an environment's Deployment at one commit."""

    version: str
    replicas: int | None
    images: dict[str, str]  # container name -> image, after the kustomize `images:` overrides


def git_expectation(repo: Path, env: str, commit: str | None = None) -> GitExpectation:
    """Read the overlay and the base Deployment at ``commit`` (None: the working copy)."""
    import yaml

    snapshot = RepoSnapshot(Git(repo), commit)

    base = overlay_yaml(snapshot.lenient_text("base/kustomization.yaml") or "", "base/kustomization.yaml")
    overrides = [*(base.get("images") or []), *(snapshot.overlay(env).get("images") or [])]
    images = {}
    where = "base/deployment.yaml"
    try:
        for doc in yaml.load_all(
            snapshot.lenient_text(where) or "", Loader=yaml_loader()
        ):  # a SafeLoader that also refuses aliases
            if isinstance(doc, dict) and doc.get("kind") == "Deployment" and doc["metadata"].get("name") == DEPLOYMENT:
                for container in doc["spec"]["template"]["spec"].get("containers") or []:
                    images[container["name"]] = apply_kustomize_images(container["image"], overrides)
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as error:
        detail = getattr(error, "problem", None) or f"{type(error).__name__} {error}"
        raise DamagedFile(
            f"{where} is not the Deployment gitops-lab expects ({str(detail)[:120]})",
            fix=f"fix it and commit, or restore it with `git checkout gitops-lab/seed -- {where}`",
        ) from None
    return GitExpectation(snapshot.model_version(env), snapshot.replicas(env), images)


def drift(dep: dict[str, Any], expected: GitExpectation) -> list[str]:
    """How the live Deployment differs from Git, one short phrase per difference; [] when it matches."""
    spec = dep.get("spec", {})
    template = spec.get("template", {})
    found = []
    live_version = template.get("metadata", {}).get("labels", {}).get(VERSION_LABEL)
    if live_version != expected.version:
        found.append(f"model version {live_version} live, {expected.version} in Git")
    if expected.replicas is not None and spec.get("replicas") != expected.replicas:
        found.append(f"{spec.get('replicas')} replicas live, {expected.replicas} in Git")
    for container in template.get("spec", {}).get("containers") or []:
        want = expected.images.get(container.get("name"))
        if want and container.get("image") != want:
            found.append(f"container {container.get('name')} image {container.get('image')} live, {want} in Git")
    return found


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
    # How the live Deployment differs from Git at that commit (configuration drift).
    drift: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.sync in ("Synced", "Applied")
            and self.health in ("Healthy", "Ready")
            and self.replicas_ready >= self.replicas_desired > 0
            and not self.drift
        )

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
        expected = _expectation(lab, env, commit)
        differences = drift(dep, expected) if dep else []
        if not dep and not message:
            message = f"Deployment {namespace}/{DEPLOYMENT} not found"
        elif differences:
            message = (
                f"drift: {'; '.join(differences)}; `gitops-lab sync --env {env}` puts Git's state back "
                "(a change you need goes through Git: commit and push it)"
            )
        reports.append(
            EnvironmentReport(
                environment=env,
                namespace=namespace,
                engine=lab.engine.name,
                commit=commit,
                sync=sync,
                health=health,
                version=version,
                git_version=expected.version,
                replicas_ready=status.get("readyReplicas", 0) or 0,
                replicas_desired=spec.get("replicas", 0) if dep else 0,
                message=message,
                drift=differences,
            )
        )
    return reports


def _expectation(lab: LabEnvironment, env: str, commit: str | None) -> GitExpectation:
    """What Git sets at the commit the engine applied, or in the working copy when that commit is unknown here.

    A commit pushed from elsewhere (the in-cluster release automation, a clone) is fetched first: the working
    copy stays as it is, but the comparison is with what the engine applied, not with an older checkout.
    """
    git = Git(lab.repo)
    if commit and not _known(git, commit):
        try:
            fetch_pushed(git)
        except GitError:
            pass  # the Git server cannot be reached: compare with the working copy, as before
    if commit and _known(git, commit):
        return git_expectation(lab.repo, env, commit)
    return git_expectation(lab.repo, env)


def _known(git: Git, commit: str) -> bool:
    return git.ok("cat-file", "-e", f"{commit}^{{commit}}")

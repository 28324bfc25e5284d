"""`up --release-automation`: put the release automation in the cluster, deployed through GitOps.

Two halves, on purpose:

- what the platform grants, applied by `up` itself (manifests/release-automation/
  platform.yaml, environment-role.yaml, engine-role.yaml): the namespace, the
  ServiceAccount, the Git credentials (a Secret holding the Git server's writer
  account) and namespaced Roles. The lab repository, which every learner can
  push to, cannot grant itself rights;
- the workload, in the lab repository: ``automation/release-automation.yaml``
  (the Deployment, naming the image `up` built) and its kustomization, synced by
  the engine as a fourth target beside dev, staging and prod.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import yaml

from gitops_lab.adapters.engines.base import Engine, EnvironmentTarget
from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo.git import Git, GitAuth
from gitops_lab.kube.apply import Applier
from gitops_lab.kube.client import Kube
from gitops_lab.resources import manifests_dir
from gitops_lab.workflows.release_agent import NAMESPACE

FOLDER = "automation"
DEPLOYMENT_FILE = f"{FOLDER}/release-automation.yaml"
KUSTOMIZATION_FILE = f"{FOLDER}/kustomization.yaml"
TARGET = "release-automation"

#: What the automation may do with each engine's objects: read them, and ask for a reconcile.
ENGINE_RULES: dict[str, list[dict[str, Any]]] = {
    "argocd": [
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["get", "list", "watch", "patch"]},
    ],
    "flux": [
        {
            "apiGroups": ["source.toolkit.fluxcd.io"],
            "resources": ["gitrepositories"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {
            "apiGroups": ["kustomize.toolkit.fluxcd.io"],
            "resources": ["kustomizations"],
            "verbs": ["get", "list", "watch", "patch"],
        },
    ],
}


def automation_target() -> EnvironmentTarget:
    """The automation as the engine sees it: the folder automation/, applied into its namespace."""
    return EnvironmentTarget(name=TARGET, namespace=NAMESPACE, path=FOLDER)


def _render(template: str, **values: str) -> list[dict[str, Any]]:
    text = (manifests_dir("release-automation") / template).read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(string.Template(text).substitute(values)) if doc]


def platform_objects(engine: Engine, writer: GitAuth) -> list[dict[str, Any]]:
    """The namespace, identity, credentials and Roles of the automation in its own and the engine's namespace."""
    objects = _render(
        "platform.yaml",
        namespace=NAMESPACE,
        username=json.dumps(writer.username),
        password=json.dumps(writer.password),
    )
    rules = json.dumps(ENGINE_RULES[engine.name])
    return objects + _render("engine-role.yaml", namespace=NAMESPACE, target=engine.namespace, rules=rules)


def environment_roles(env_namespaces: list[str]) -> list[dict[str, Any]]:
    """Its Role in each environment's namespace (which the engine creates, from the overlays)."""
    return [
        obj for target in env_namespaces for obj in _render("environment-role.yaml", namespace=NAMESPACE, target=target)
    ]


def apply_platform(kube: Kube, engine: Engine, writer: GitAuth) -> list[str]:
    """Apply the platform's half; "Kind/name" of what changed."""
    return Applier(kube).apply_changed(platform_objects(engine, writer))


def grant_environments(kube: Kube, env_namespaces: list[str]) -> list[str]:
    """Apply the environments' Roles, once the engine made their namespaces; "Kind/name" of what changed."""
    return Applier(kube).apply_changed(environment_roles(env_namespaces))


def workload_files(image: str, repo_url: str, engine: str) -> dict[str, str]:
    """The files automation/ holds in the lab repository."""
    template = (manifests_dir("release-automation") / "deployment.yaml").read_text(encoding="utf-8")
    deployment = string.Template(template).substitute(
        namespace=NAMESPACE, image=image, repo_url=json.dumps(repo_url), engine=engine
    )
    kustomization = (
        "# The release automation's workload (docs/release-automation.md); `gitops-lab up --release-automation`\n"
        "# wrote it. Its rights are not here: the platform grants them.\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        "  - release-automation.yaml\n"
    )
    return {DEPLOYMENT_FILE: deployment, KUSTOMIZATION_FILE: kustomization}


def publish_workload(repo_path: Path, image: str, repo_url: str, engine: str) -> str | None:
    """Write automation/ into the working copy and push it as one commit; its hash, None when unchanged."""
    git = Git(repo_path)
    files = workload_files(image, repo_url, engine)
    if all((repo_path / p).is_file() and (repo_path / p).read_text() == text for p, text in files.items()):
        return None
    publish.check_clean(git)
    publish.catch_up(git)
    with publish.published_or_undone(git, "the release automation's manifests"):
        for path, text in files.items():
            (repo_path / path).parent.mkdir(parents=True, exist_ok=True)
            (repo_path / path).write_text(text, encoding="utf-8")
        commit = publish.commit(
            git,
            list(files),
            f"Deploy the release automation ({image.rsplit(':', 1)[-1]})\n\n"
            "The engine syncs automation/: a pod that promotes, verifies and rolls back on every push.",
        )
        publish.push(git)
    return commit

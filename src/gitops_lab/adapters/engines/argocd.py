"""Argo CD: one Application per environment in a lab-only AppProject."""

from __future__ import annotations

import base64
import json
from typing import Any

import yaml

from gitops_lab.adapters.engines.base import (
    Engine,
    EngineStatus,
    EnvironmentTarget,
    Progress,
    RepoAccess,
    project_name,
)
from gitops_lab.adapters.engines.argocd_sops import (
    PLUGIN,
    REPO_SERVER,
    SIDECAR,
    add_sops_plugin,
    plugin_source,
)
from gitops_lab.errors import EngineError, WaitTimeout
from gitops_lab.deadline import Deadline, explaining_a_timeout
from gitops_lab.kube.wait import Verdict, wait_for
from gitops_lab.reporter import Reporter
from gitops_lab.resources import manifests_dir

API = "argoproj.io/v1alpha1"
CRDS = ("applications.argoproj.io", "appprojects.argoproj.io")
# What a lab needs of the upstream install; dex (SSO), notifications and the
# ApplicationSet controller are left out to keep the footprint small.
DROPPED_DEPLOYMENTS = ("argocd-dex-server", "argocd-notifications-controller", "argocd-applicationset-controller")
# Gitea signs each delivery for Gogs as well (X-Gogs-Event, X-Gogs-Signature: the same HMAC-SHA256 as
# X-Gitea-Signature), and argocd-server checks a Gogs delivery against this key of argocd-secret.
GOGS_WEBHOOK_SECRET_KEY = "webhook.gogs.secret"
SETTINGS_SECRET = "argocd-secret"
# argocd-server writes the admin account's first password here; Argo CD's docs say to delete it
# once the password is changed (`argocd account update-password`).
INITIAL_ADMIN_SECRET = "argocd-initial-admin-secret"
UI_USER = "admin"


class ArgoCD(Engine):
    name = "argocd"
    display_name = "Argo CD"
    has_ui = True
    namespace = "argocd"
    crds = CRDS
    install_hint = "install Argo CD into the argocd namespace first"
    push_webhook_path = "/api/webhook"  # argocd-server's, unauthenticated: the signature is the check
    push_webhook_service = "argocd-server"  # plain HTTP on port 80: the lab runs it with server.insecure
    decryption = f"the config-management plugin {PLUGIN} beside argocd-repo-server decrypts SOPS files"

    # -- install ---------------------------------------------------------------

    def prepare_manifests(self, text: str) -> list[dict[str, Any]]:
        """Upstream objects, less what a lab does not need, with the lab's patches merged in."""
        objects = [o for o in yaml.safe_load_all(text) if o]
        objects = [
            o for o in objects if not (o.get("kind") == "Deployment" and o["metadata"]["name"] in DROPPED_DEPLOYMENTS)
        ]
        for obj in objects:
            if obj.get("kind") != "CustomResourceDefinition" and "namespace" not in obj.get("metadata", {}):
                if obj.get("kind") not in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
                    obj["metadata"]["namespace"] = self.namespace
        # the plugin's sidecar is always there; an Application uses it only once `secrets init` made the key
        objects = add_sops_plugin(objects, self.namespace)
        patches = {
            (p["kind"], p["metadata"]["name"]): p
            for p in yaml.safe_load_all((manifests_dir("argocd") / "install-patches.yaml").read_text())
            if p
        }
        for obj in objects:
            patch = patches.pop((obj["kind"], obj["metadata"]["name"]), None)
            if patch:
                obj.setdefault("data", {}).update(patch.get("data", {}))
        if self.ui_node_port:
            for obj in objects:
                if obj["kind"] == "Service" and obj["metadata"]["name"] == "argocd-server":
                    _expose_on_node_port(obj, self.ui_node_port)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        return [namespace, *objects, *patches.values()]

    def wait_installed(self, objects: list[dict[str, Any]], reporter: Reporter, deadline: Deadline) -> None:
        statefulsets = [o["metadata"]["name"] for o in objects if o["kind"] == "StatefulSet"]
        with reporter.step("Waiting for the application controller"):
            for name in statefulsets:
                wait_for(
                    self.applier,
                    "apps/v1",
                    "StatefulSet",
                    name,
                    self.namespace,
                    _statefulset_verdict,
                    deadline,
                    f"StatefulSet {self.namespace}/{name} to be ready",
                )

    # -- register --------------------------------------------------------------
    def register(self, targets: list[EnvironmentTarget], repo: RepoAccess) -> list[str]:
        destinations = json.dumps(
            [{"server": "https://kubernetes.default.svc", "namespace": t.namespace} for t in targets]
        )
        project = project_name(self.tenant)
        # A tenant's namespaces are made for it, so its project may create no cluster-wide object.
        cluster_resources = json.dumps([] if self.tenant else [{"group": "", "kind": "Namespace"}])
        objects = self.render(
            "project.yaml",
            namespace=self.namespace,
            project=project,
            repo_url=repo.url,
            destinations=destinations,
            cluster_resources=cluster_resources,
        )
        if repo.username and repo.password:
            objects += self.render(
                "repository-secret.yaml",
                namespace=self.namespace,
                repo_url=repo.url,
                secret_name=f"{project}-repo",
                username=json.dumps(repo.username),
                password=json.dumps(repo.password),
            )
        plugin = f"    plugin:\n      name: {PLUGIN}" if self.has_sops_key() else ""
        for t in targets:
            objects += self.render(
                "application.yaml",
                namespace=self.namespace,
                env=t.name,
                name=self.object_name(t.name),
                project=project,
                repo_url=repo.url,
                branch=repo.branch,
                path=t.path,
                target_namespace=t.namespace,
                prune=json.dumps(t.prune),
                self_heal=json.dumps(t.self_heal),
                plugin=plugin,
            )
        return self.apply_changed(objects)

    def enable_decryption(self, envs: list[str], key_secret: str) -> list[str]:
        """Have ``envs``' Applications render with the SOPS plugin, whose sidecar mounts ``key_secret``."""
        repo_server = self.applier.get("apps/v1", "Deployment", REPO_SERVER, self.namespace)
        containers = ((repo_server or {}).get("spec", {}).get("template", {}).get("spec", {})).get("containers") or []
        # Argo CD run outside the cluster (external mode, no Deployment) is taken at its word.
        if repo_server is not None and not any(c.get("name") == SIDECAR for c in containers):
            raise EngineError(
                f"this Argo CD's {REPO_SERVER} has no {SIDECAR} sidecar, which decrypts SOPS files",
                fix="install Argo CD with `gitops-lab up` (managed install; docs/secrets.md shows the sidecar "
                "to add to an Argo CD of your own), then run `gitops-lab secrets init` again",
            )
        changed = []
        for env in envs:
            app = self._app(env)
            if (app.get("spec", {}).get("source") or {}).get("plugin") != plugin_source()["plugin"]:
                patch = {"spec": {"source": plugin_source()}}
                self.applier.merge_patch(API, "Application", self.object_name(env), patch, self.namespace)
                changed.append(f"Application/{self.object_name(env)}")
        return changed

    def accept_push_webhooks(self, secret: str) -> list[str]:
        """Set ``webhook.gogs.secret`` in argocd-secret, so argocd-server takes the lab forge's (Gitea's)
        push webhooks signed with ``secret`` and refuses others (400); what changed.

        argocd-server restarts itself in-process when that key changes. An Application refreshes on a
        delivery only when the payload's repository URL names the same host and path as its repoURL
        (any port, with or without ``.git``), so the forge's ROOT_URL must be the address Argo CD clones from.
        """
        if not secret:
            # Argo CD takes unsigned deliveries when the key is empty: anyone could make it refresh
            raise ValueError("an empty webhook secret would let argocd-server take unsigned deliveries")
        current = self.applier.get("v1", "Secret", SETTINGS_SECRET, self.namespace)
        if current is None:
            raise EngineError(
                f"Argo CD has no Secret {self.namespace}/{SETTINGS_SECRET}, where its webhook secrets live",
                fix="install Argo CD first (`gitops-lab up`), then run the command again",
            )
        encoded = base64.b64encode(secret.encode()).decode()
        if (current.get("data") or {}).get(GOGS_WEBHOOK_SECRET_KEY) == encoded:
            return []
        self.applier.merge_patch(
            "v1", "Secret", SETTINGS_SECRET, {"data": {GOGS_WEBHOOK_SECRET_KEY: encoded}}, self.namespace
        )
        return [f"Secret/{SETTINGS_SECRET} {GOGS_WEBHOOK_SECRET_KEY}"]

    def ui_login(self) -> tuple[str, str]:
        """The UI's login: ``admin`` and the first password argocd-server generated."""
        secret = self.applier.get("v1", "Secret", INITIAL_ADMIN_SECRET, self.namespace)
        password = ((secret or {}).get("data") or {}).get("password")
        if not password:
            raise EngineError(
                f"Argo CD has no Secret {self.namespace}/{INITIAL_ADMIN_SECRET} with the admin password",
                fix=(
                    "argocd-server writes it when it first starts: wait for it (`gitops-lab status`); "
                    "if you changed the password and deleted the Secret, use the one you chose"
                ),
            )
        return UI_USER, base64.b64decode(password).decode()

    # -- reconcile and status -----------------------------------------------
    def request_reconcile(self, env: str, commit: str | None = None) -> None:
        self.applier.merge_patch(
            API,
            "Application",
            self.object_name(env),
            {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}},
            self.namespace,
        )

    def _app(self, env: str) -> dict[str, Any]:
        app = self.applier.get(API, "Application", self.object_name(env), self.namespace)
        if app is None:
            raise EngineError(
                f"Argo CD has no Application for {env} ({self.namespace}/{self.object_name(env)})",
                fix="run `gitops-lab up` to register the environments",
            )
        return app

    def status(self, env: str) -> EngineStatus:
        return status_of(env, self._app(env))

    def wait_applied(
        self, env: str, commit: str | None, deadline: Deadline, on_progress: Progress | None = None
    ) -> EngineStatus:
        def check(app: dict[str, Any] | None) -> Verdict:
            if app is None:
                return False, "the Application does not exist"
            return applied_verdict(status_of(env, app), commit, app)

        try:
            app = wait_for(
                self.applier,
                API,
                "Application",
                self.object_name(env),
                self.namespace,
                check,
                deadline,
                f"Argo CD to sync {env} to {commit[:7] if commit else 'its branch'} and report it Healthy",
                on_progress,
                ask_again=self.ask_again(env, commit, lambda app: status_of(env, app).revision),
            )
        except WaitTimeout as exc:
            with explaining_a_timeout():
                last = self.status(env)
            raise WaitTimeout(f"{exc.message}; Argo CD says: {last.message or 'nothing'}") from exc
        return status_of(env, app)


def _expose_on_node_port(service: dict[str, Any], node_port: int) -> None:
    """Serve the UI's plain-HTTP port on ``node_port`` (kind maps it to localhost)."""
    service["spec"]["type"] = "NodePort"
    for port in service["spec"].get("ports", []):
        if port.get("name") == "http":
            port["nodePort"] = node_port


def status_of(env: str, app: dict[str, Any]) -> EngineStatus:
    status = app.get("status", {}) or {}
    sync = status.get("sync", {}) or {}
    health = status.get("health", {}) or {}
    operation = status.get("operationState", {}) or {}
    messages = [c.get("message", "") for c in status.get("conditions", []) or [] if c.get("message")]
    if operation.get("phase") in ("Error", "Failed") and operation.get("message"):
        messages.append(operation["message"])
        # "one or more synchronization tasks are not valid" says little; the tasks say why.
        resources = (operation.get("syncResult") or {}).get("resources") or []
        messages += [
            f"{r.get('kind')}/{r.get('name')}: {r['message']}"
            for r in resources
            if r.get("status") == "SyncFailed" and r.get("message")
        ][:3]
    if health.get("message"):
        messages.append(health["message"])
    return EngineStatus(
        environment=env,
        engine="argocd",
        revision=sync.get("revision"),
        synced=sync.get("status") == "Synced",
        healthy=health.get("status") == "Healthy",
        sync_state=sync.get("status", "Unknown"),
        health_state=health.get("status", "Unknown"),
        message="; ".join(" ".join(m.split()) for m in messages),
    )


def applied_verdict(state: EngineStatus, commit: str | None, app: dict[str, Any]) -> Verdict:
    seen = f"revision {(state.revision or 'none')[:7]}, {state.sync_state}, {state.health_state}"
    if state.message:
        seen += f" ({state.message})"
    if commit and state.revision != commit:
        return False, seen
    operation = (app.get("status", {}) or {}).get("operationState", {}) or {}
    if operation.get("phase") in ("Running", "Terminating"):
        return False, seen + ", sync running"
    return state.synced and state.healthy, seen


def _statefulset_verdict(sts: dict[str, Any] | None) -> Verdict:
    if sts is None:
        return False, "the StatefulSet does not exist"
    want = sts.get("spec", {}).get("replicas", 1)
    ready = (sts.get("status", {}) or {}).get("readyReplicas", 0)
    return ready >= want, f"{ready} of {want} ready"

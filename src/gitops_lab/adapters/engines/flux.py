"""Flux: one GitRepository and one Kustomization per environment."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import yaml

from gitops_lab.adapters.engines.base import (
    Engine,
    EngineStatus,
    EnvironmentTarget,
    Progress,
    RepoAccess,
    SOPS_KEY_SECRET,
    project_name,
)
from gitops_lab.errors import EngineError, WaitTimeout
from gitops_lab.adapters.engines.flux_receiver import wait_receiver_ready
from gitops_lab.deadline import Deadline, command_deadline_unless_set, explaining_a_timeout
from gitops_lab.kube.wait import Verdict, wait_for
from gitops_lab.resources import manifests_dir

SOURCE_API = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
RECEIVER_CRD = "receivers.notification.toolkit.fluxcd.io"
#: How long a Receiver may take to report Ready when no command deadline bounds the wait.
RECEIVER_READY_SECONDS = 120
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
CRDS = ("gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io")


class Flux(Engine):
    name = "flux"
    display_name = "Flux"
    namespace = "flux-system"
    crds = CRDS
    install_hint = "install Flux first (`flux install`)"
    decryption = "kustomize-controller decrypts SOPS files natively (spec.decryption.provider: sops)"
    # notification-controller's receiver, plain HTTP on port 80; the path is the Receiver's (webhook_path)
    push_webhook_service = "webhook-receiver"

    # -- install ---------------------------------------------------------------

    def prepare_manifests(self, text: str) -> list[dict[str, Any]]:
        """Keep only the controllers and CRD groups manifests/flux/install-filter.yaml names."""
        keep = yaml.safe_load((manifests_dir("flux") / "install-filter.yaml").read_text(encoding="utf-8"))
        controllers, groups = set(keep["controllers"]), set(keep["crdGroups"])
        dropped_controllers: set[str] = set()
        result = []
        for obj in (o for o in yaml.safe_load_all(text) if o):
            kind, name = obj.get("kind"), obj["metadata"]["name"]
            if kind == "CustomResourceDefinition" and obj["spec"]["group"] not in groups:
                continue
            if kind == "Deployment" and name not in controllers:
                dropped_controllers.add(name)
                continue
            result.append(obj)
        # Services and ServiceAccounts named after a dropped controller go too.
        return [
            o
            for o in result
            if not (o["kind"] in ("Service", "ServiceAccount") and o["metadata"]["name"] in dropped_controllers)
        ]

    # -- register --------------------------------------------------------------
    def register(self, targets: list[EnvironmentTarget], repo: RepoAccess) -> list[str]:
        objects: list[dict[str, Any]] = []
        secret_ref = ""
        prefix = project_name(self.tenant)
        if repo.username and repo.password:
            objects += self.render(
                "git-credentials-secret.yaml",
                namespace=self.namespace,
                secret_name=f"{prefix}-git",
                username=json.dumps(repo.username),
                password=json.dumps(repo.password),
            )
            secret_ref = f"  secretRef:\n    name: {prefix}-git"
        # A tenant's Kustomizations act as the tenant's ServiceAccount (see adapters/engines/tenancy.py).
        service_account = f"  serviceAccountName: {reconciler_account(self.tenant)}" if self.tenant else ""
        decryption = _decryption_block(SOPS_KEY_SECRET) if self.has_sops_key() else ""
        for t in targets:
            name = self.object_name(t.name)
            objects += self.render(
                "gitrepository.yaml",
                namespace=self.namespace,
                env=t.name,
                name=name,
                repo_url=repo.url,
                branch=repo.branch,
                secret_ref=secret_ref,
            )
            objects += self.render(
                "kustomization.yaml",
                namespace=self.namespace,
                env=t.name,
                name=name,
                path=t.path,
                prune=json.dumps(t.prune),
                interval="1m" if t.self_heal else "60m",
                service_account=service_account,
                decryption=decryption,
            )
        return self.apply_changed(objects)

    def enable_decryption(self, envs: list[str], key_secret: str) -> list[str]:
        changed = []
        for env in envs:
            name = self.object_name(env)
            before = self.applier.get(KUSTOMIZE_API, "Kustomization", name, self.namespace)
            if before is None:
                raise EngineError(
                    f"Flux has no Kustomization for {env} ({self.namespace}/{name})",
                    fix="run `gitops-lab up` first, then `gitops-lab secrets init` again",
                )
            wanted = {"provider": "sops", "secretRef": {"name": key_secret}}
            if (before.get("spec") or {}).get("decryption") != wanted:
                patch = {"spec": {"decryption": wanted}}
                self.applier.merge_patch(KUSTOMIZE_API, "Kustomization", name, patch, self.namespace)
                changed.append(f"Kustomization/{name}")
        return changed

    # -- push webhooks ----------------------------------------------------------
    def receiver_name(self) -> str:
        """The Receiver (and, with ``-webhook``, its token Secret) of the lab or of a classroom tenant."""
        return project_name(self.tenant)

    def webhook_path(self, secret: str) -> str:
        """Where notification-controller serves the Receiver made with token ``secret``: ``/hook/`` and
        the hex SHA-256 of token, name and namespace, as it computes ``status.webhookPath``."""
        digest = hashlib.sha256(f"{secret}{self.receiver_name()}{self.namespace}".encode()).hexdigest()
        return f"/hook/{digest}"

    def push_webhook(self, secret: str) -> tuple[str | None, list[str]]:
        """The Receiver's in-cluster URL and what changed (``accept_push_webhooks``); (None, []) when this
        Flux has no notification-controller (an external install without it): pushes then wait for the
        GitRepositories' poll, or for the CLI's reconcile request."""
        if not self._has_receivers():
            return None, []
        url, changed = super().push_webhook(secret)
        # until notification-controller serves the Receiver, a delivery is refused: wait, within the command's time
        with command_deadline_unless_set(RECEIVER_READY_SECONDS) as deadline:
            wait_receiver_ready(self.applier, self.receiver_name(), self.namespace, self.webhook_path(secret), deadline)
        return url, changed

    def _has_receivers(self) -> bool:
        return self.applier.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", RECEIVER_CRD) is not None

    def accept_push_webhooks(self, secret: str) -> list[str]:
        """Apply a Secret holding ``secret`` as the token and a ``github`` Receiver; what changed.

        Gitea signs each delivery GitHub's way too (``X-GitHub-Event``, ``X-Hub-Signature-256``: an
        HMAC-SHA256 of the body with the hook's secret), so notification-controller checks it with the
        token, refuses a wrongly signed one (its log says why; Gitea records a failed delivery), and
        for a push annotates every GitRepository labelled part of the lab (a tenant's only: those named
        after it) with ``reconcile.fluxcd.io/requestedAt``. source-controller fetches at once and
        kustomize-controller applies the new revision. Applying again the same token changes nothing.
        """
        if not secret:
            raise ValueError("an empty webhook secret would let anyone make Flux fetch")
        if not self._has_receivers():
            raise EngineError(
                f"Flux here has no notification-controller (CRD {RECEIVER_CRD} missing), which takes push webhooks",
                fix="install Flux with its notification-controller (`gitops-lab up` does), then run the command again",
            )
        name = self.receiver_name()
        # A tenant's GitRepositories are named gitops-lab-<tenant>-<env> (registered_name): a CEL filter.
        expression = f'res.metadata.name.startsWith("{name}-")'
        resource_filter = f"  resourceFilter: {json.dumps(expression)}" if self.tenant else ""
        objects = self.render(
            "receiver.yaml",
            namespace=self.namespace,
            name=name,
            secret_name=f"{name}-webhook",
            token=json.dumps(secret),
            resource_filter=resource_filter,
        )
        return self.apply_changed(objects)

    # -- reconcile and status -----------------------------------------------
    def request_reconcile(self, env: str, commit: str | None = None) -> None:
        """Ask the GitRepository to fetch and the Kustomization to apply now.

        With ``commit``, only the step it waits on is asked: while the GitRepository
        has not fetched ``commit``, only the source (its new artifact makes the
        Kustomization apply once, at that commit: asking both makes it apply the old
        artifact first, then again, on the same two cores); once the source has it,
        only the Kustomization. A wait asks again while the commit is not applied.
        """
        name = self.object_name(env)
        stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        patch = {"metadata": {"annotations": {REQUESTED_AT: stamp}}}
        fetched = False
        if commit:
            source = self.applier.get(SOURCE_API, "GitRepository", name, self.namespace)
            artifact = ((source or {}).get("status") or {}).get("artifact") or {}
            fetched = revision_commit(artifact.get("revision")) == commit
        if not fetched:
            self.applier.merge_patch(SOURCE_API, "GitRepository", name, patch, self.namespace)
        if not commit or fetched:
            self.applier.merge_patch(KUSTOMIZE_API, "Kustomization", name, patch, self.namespace)

    def _objects(self, env: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        kustomization = self.applier.get(KUSTOMIZE_API, "Kustomization", self.object_name(env), self.namespace)
        if kustomization is None:
            raise EngineError(
                f"Flux has no Kustomization for {env} ({self.namespace}/{self.object_name(env)})",
                fix="run `gitops-lab up` to register the environments",
            )
        source = self.applier.get(SOURCE_API, "GitRepository", self.object_name(env), self.namespace)
        return source, kustomization

    def status(self, env: str) -> EngineStatus:
        source, kustomization = self._objects(env)
        return status_of(env, kustomization, source)

    def wait_applied(
        self, env: str, commit: str | None, deadline: Deadline, on_progress: Progress | None = None
    ) -> EngineStatus:
        def check(kustomization: dict[str, Any] | None) -> Verdict:
            if kustomization is None:
                return False, "the Kustomization does not exist"
            return applied_verdict(status_of(env, kustomization, None), commit, kustomization)

        try:
            found = wait_for(
                self.applier,
                KUSTOMIZE_API,
                "Kustomization",
                self.object_name(env),
                self.namespace,
                check,
                deadline,
                f"Flux to apply {commit[:7] if commit else 'the branch'} to {env} and report it Ready",
                on_progress,
                ask_again=self.ask_again(env, commit, lambda k: status_of(env, k, None).revision),
            )
        except WaitTimeout as exc:
            with explaining_a_timeout():
                last = self.status(env)
            raise WaitTimeout(f"{exc.message}; Flux says: {last.message or 'nothing'}") from exc
        return status_of(env, found, None)


def _decryption_block(key_secret: str) -> str:
    return f"  decryption:\n    provider: sops\n    secretRef:\n      name: {key_secret}"


def reconciler_account(tenant: str | None) -> str:
    """The ServiceAccount (in the Flux namespace) a tenant's Kustomizations impersonate."""
    return project_name(tenant)


def revision_commit(revision: str | None) -> str | None:
    """``main@sha1:<sha>`` (Flux v1 APIs) or ``main/<sha>`` (older) -> ``<sha>``."""
    if not revision:
        return None
    return revision.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def _ready(obj: dict[str, Any] | None) -> tuple[str, str]:
    for condition in ((obj or {}).get("status", {}) or {}).get("conditions", []) or []:
        if condition.get("type") == "Ready":
            return condition.get("status", "Unknown"), " ".join((condition.get("message") or "").split())
    return "Unknown", ""


def status_of(env: str, kustomization: dict[str, Any], source: dict[str, Any] | None) -> EngineStatus:
    status = kustomization.get("status", {}) or {}
    applied = revision_commit(status.get("lastAppliedRevision"))
    attempted = revision_commit(status.get("lastAttemptedRevision"))
    ready, message = _ready(kustomization)
    if source is not None:
        source_ready, source_message = _ready(source)
        if source_ready == "False" and source_message:
            message = f"source: {source_message}" + (f"; {message}" if message else "")
    current = kustomization.get("metadata", {}).get("generation") == status.get("observedGeneration")
    synced = bool(applied) and applied == attempted and current
    return EngineStatus(
        environment=env,
        engine="flux",
        revision=applied,
        synced=synced,
        healthy=ready == "True",
        sync_state="Applied"
        if synced
        else ("Progressing" if ready == "Unknown" else "Failed" if ready == "False" else "Pending"),
        health_state={"True": "Ready", "False": "NotReady"}.get(ready, "Unknown"),
        message=message if ready != "True" else "",
    )


def applied_verdict(state: EngineStatus, commit: str | None, kustomization: dict[str, Any]) -> Verdict:
    seen = f"applied {(state.revision or 'nothing')[:7]}, {state.health_state}"
    if state.message:
        seen += f" ({state.message})"
    if commit and state.revision != commit:
        return False, seen
    return state.synced and state.healthy, seen

"""Gitea's push webhook makes Flux fetch at once through notification-controller's Receiver (testbed: real
Gitea, real source-controller and notification-controller).

The lab's GitRepositories here poll every 10 minutes (``POLL``), so a GitRepository whose artifact reaches a
pushed commit within the 60 s these waits allow, with no reconcile requested by the test, was asked by the
Receiver: the ``reconcile.fluxcd.io/requestedAt`` annotation it sets is the other half of the evidence. A
delivery signed with another secret is refused (Gitea records the 400) and the change arrives only by the
fallback: the CLI's reconcile request.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gitops_lab.adapters.engines.base import RepoAccess
from gitops_lab.adapters.engines.flux import REQUESTED_AT, SOURCE_API, Flux
from gitops_lab.adapters.engines.flux_receiver import NOTIFICATION_API
from gitops_lab.adapters.forge.seed import LabRepository, gitea_cli_admin_creator, load_or_create_accounts, seed_lab
from gitops_lab.deadline import command_deadline
from gitops_lab.kube.client import connect
from helpers.gitutil import commit_and_push, git
from testbed.processes import wait_until
from testbed.watching import watch_until


POLL = "10m"
# Well inside the 10-minute poll: polling cannot explain a fetch seen within it.
WEBHOOK_WAIT = 60


def _push(work: Path, url: str, message: str) -> str:
    (work / "README.md").write_text(f"{message}\n")
    return commit_and_push(work, url, message)


@dataclasses.dataclass
class Lab:
    """One lab repository on Gitea, its working copy, and the GitRepository (of a tenant) that tracks it."""

    engine: Flux
    name: str  # the GitRepository's
    push_url: str
    work: Path

    def push(self, message: str) -> str:
        return _push(self.work, self.push_url, message)

    def source(self) -> dict:
        found = self.engine.applier.get(SOURCE_API, "GitRepository", self.name, self.engine.namespace)
        assert found is not None
        return found


def _artifact_commit(obj: dict) -> str:
    return (((obj.get("status") or {}).get("artifact") or {}).get("revision") or "").rsplit(":", 1)[-1]


def _revision_reaches(flux, name: str, sha: str, timeout: float) -> dict:
    """Wait (bounded) until GitRepository ``name`` has fetched ``sha``, requesting nothing."""
    from kubernetes import client

    with flux.cluster.api_client() as api:
        return watch_until(
            f"GitRepository {name} at revision {sha[:7]}",
            client.CustomObjectsApi(api).list_namespaced_custom_object,
            lambda o: _artifact_commit(o) == sha,
            timeout,
            flux.check_health,
            group="source.toolkit.fluxcd.io",
            version="v1",
            namespace=flux.namespace,
            plural="gitrepositories",
            field_selector=f"metadata.name={name}",
        )


def _delivery(gitea, url: str, sha: str):
    """Gitea's record of the (delivered) push webhook for ``sha``, waited for within 60 s."""

    def delivered():
        return next((d for d in gitea.deliveries() if d.url == url and d.after == sha and d.delivered), None)

    return wait_until(f"Gitea's delivery of {sha[:7]} to {url}", delivered, 60, gitea.check_health)


@pytest.fixture(scope="module")
def hooked(testbed_gitea, testbed_cluster, testbed_flux_notification, tmp_path_factory):
    """Two lab repositories on Gitea, each tracked by a tenant's GitRepository and announced to that
    tenant's Receiver: ``lab`` signs its pushes with the kept secret, ``lab-wrong`` with another one."""
    gitea, flux = testbed_gitea, testbed_flux_notification
    # the session's Gitea is shared by every module: this one's accounts are its own
    accounts = load_or_create_accounts(
        tmp_path_factory.mktemp("forge") / "forge-credentials.json",
        learner="fhook-learner",
        reviewers=("fhook-reviewer",),
        admin="fhook-admin",
        engine="fhook-engine",
    )
    create = gitea_cli_admin_creator(gitea.cli())
    kube = connect(testbed_cluster.kubeconfig)
    labs = {}
    for name, tenant, signing in (
        ("lab", "fhook", accounts),
        ("lab-wrong", "fhookwrong", dataclasses.replace(accounts, webhook_secret="not-the-kept-secret-0123456789")),
    ):
        engine = Flux(kube, tenant=tenant)
        # the product's side: a token Secret and a Receiver, the second time nothing changes
        receiver = engine.receiver_name()
        assert engine.accept_push_webhooks(accounts.webhook_secret) == [
            f"Secret/{receiver}-webhook",
            f"Receiver/{receiver}",
        ]
        assert engine.accept_push_webhooks(accounts.webhook_secret) == []
        path = engine.webhook_path(accounts.webhook_secret)

        def ready(engine=engine, receiver=receiver):
            obj = engine.applier.get(NOTIFICATION_API, "Receiver", receiver, engine.namespace) or {}
            status = obj.get("status") or {}
            conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
            return status if conditions.get("Ready") == "True" else None

        # the path the adapter computes is the one notification-controller serves (before it is Ready: 503)
        assert wait_until(f"Receiver {receiver} Ready", ready, 60, flux.check_health)["webhookPath"] == path
        webhook_url = f"{flux.receiver_url}{path}"

        host = gitea.url.removeprefix("http://")
        owner = accounts.learner.username
        push_url = f"http://{owner}:{accounts.learner.password}@{host}/{owner}/{name}.git"
        changes = seed_lab(gitea.url, signing, create, LabRepository(name, webhook_url=webhook_url))
        assert f"added a push webhook of {owner}/{name} to {webhook_url}" in changes
        work = tmp_path_factory.mktemp(name)
        git(work, "init", "-q", "-b", "main")
        git(work, "config", "user.name", "Lea Learner")
        git(work, "config", "user.email", "learner@example.invalid")
        first = _push(work, push_url, "v1")
        # Gitea delivers asynchronously: let the first push's delivery land before the tests look
        _delivery(gitea, webhook_url, first)
        # the product's GitRepository (its template, as `register` renders it), polling every 10 minutes;
        # source-controller clones over HTTP as the engine account (read access given by seed_lab)
        source_name = engine.object_name("dev")
        repo = RepoAccess(f"{gitea.url}/{owner}/{name}.git", username=accounts.engine.username)
        objects = engine.render(
            "gitrepository.yaml",
            namespace=engine.namespace,
            env="dev",
            name=source_name,
            repo_url=repo.url,
            branch=repo.branch,
            secret_ref=f"  secretRef:\n    name: {source_name}-git",
        )
        objects += engine.render(
            "git-credentials-secret.yaml",
            namespace=engine.namespace,
            secret_name=f"{source_name}-git",
            username=json.dumps(accounts.engine.username),
            password=json.dumps(accounts.engine.password),
        )
        # and its Kustomization, acting as kustomize-controller itself (a tenant's ServiceAccount is not
        # made here): request_reconcile, the fallback, annotates both
        objects += engine.render(
            "kustomization.yaml",
            namespace=engine.namespace,
            env="dev",
            name=source_name,
            path="",
            prune="true",
            interval="60m",
            service_account="",
            decryption="",
        )
        for obj in objects:
            if obj["kind"] == "GitRepository":
                obj["spec"]["interval"] = POLL
        engine.apply_changed(objects)
        _revision_reaches(flux, source_name, first, 120)
        labs[name] = Lab(engine, source_name, push_url, work)
    return labs, gitea, flux, accounts.webhook_secret


def test_polling_is_slow_here(hooked):
    labs, _, _, _ = hooked
    # What makes a fetch within WEBHOOK_WAIT the Receiver's doing: the GitRepositories' interval.
    for lab in labs.values():
        assert lab.source()["spec"]["interval"] == POLL


def test_a_push_makes_the_git_repository_fetch_through_the_receiver(hooked):
    labs, gitea, flux, secret = hooked
    lab = labs["lab"]
    before = (lab.source()["metadata"].get("annotations") or {}).get(REQUESTED_AT)
    sha = lab.push("v2")
    fetched = _revision_reaches(flux, lab.name, sha, WEBHOOK_WAIT)
    # the Receiver asked for it anew (the test requests nothing), and source-controller handled that request
    requested = (fetched["metadata"].get("annotations") or {}).get(REQUESTED_AT)
    assert requested and requested != before
    assert (fetched.get("status") or {}).get("lastHandledReconcileAt") == requested
    record = _delivery(gitea, f"{flux.receiver_url}{lab.engine.webhook_path(secret)}", sha)
    assert record.succeeded and record.status == 200, record


def test_a_wrongly_signed_delivery_is_refused_and_the_reconcile_request_still_brings_the_change(hooked):
    labs, gitea, flux, secret = hooked
    good, wrong = labs["lab"], labs["lab-wrong"]
    stale = _artifact_commit(wrong.source())
    refused_sha = wrong.push("v2")
    record = _delivery(gitea, f"{flux.receiver_url}{wrong.engine.webhook_path(secret)}", refused_sha)
    assert not record.succeeded and record.status == 400, record
    # a correctly signed push made after it is fetched within the wait; the refused one was not
    good_sha = good.push("v3")
    _revision_reaches(flux, good.name, good_sha, WEBHOOK_WAIT)
    after = wrong.source()
    assert _artifact_commit(after) == stale
    assert REQUESTED_AT not in (after["metadata"].get("annotations") or {})
    # the fallback: the CLI's own reconcile request (polling would get there only within 10 minutes)
    wrong.engine.request_reconcile("dev")
    _revision_reaches(flux, wrong.name, refused_sha, 120)


def test_push_webhook_returns_once_the_receiver_serves_its_path(testbed_cluster, testbed_flux_notification):
    """What `up` calls: the Receiver applied, then waited for (within the command's deadline) until
    notification-controller reports it Ready at the path the forge's webhook is sent to; read once after, no wait."""
    engine = Flux(connect(testbed_cluster.kubeconfig), tenant="fhookready")
    secret = "fhookready-secret-0123456789abcdef"
    with command_deadline(120):
        url, changed = engine.push_webhook(secret)
    receiver, path = engine.receiver_name(), engine.webhook_path(secret)
    assert changed == [f"Secret/{receiver}-webhook", f"Receiver/{receiver}"]
    assert url == f"http://webhook-receiver.{engine.namespace}.svc.cluster.local{path}"
    status = (engine.applier.get(NOTIFICATION_API, "Receiver", receiver, engine.namespace) or {}).get("status") or {}
    assert {c["type"]: c["status"] for c in status.get("conditions") or []}.get("Ready") == "True"
    assert status.get("webhookPath") == path

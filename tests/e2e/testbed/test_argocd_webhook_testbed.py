"""Gitea's push webhook makes Argo CD refresh at once (testbed: real Gitea, real argocd-server and controller).

Argo CD polls every 120 s here (the testbed starts its controller with ``--app-resync=120``, which wins over
argocd-cm's ``timeout.reconciliation``; the controller adds up to 60 s of jitter), so an Application reaching a pushed commit within the 60 s these waits allow, with no refresh
requested by anyone, was refreshed by the delivery. A delivery signed with another secret is refused
(Gitea records the 400) and the change arrives only by the fallback: the CLI's reconcile request.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gitops_lab.adapters.engines.argocd import GOGS_WEBHOOK_SECRET_KEY, SETTINGS_SECRET, ArgoCD
from gitops_lab.adapters.engines.base import EnvironmentTarget, RepoAccess
from gitops_lab.adapters.forge.seed import LabRepository, gitea_cli_admin_creator, load_or_create_accounts, seed_lab
from gitops_lab.deadline import Deadline
from gitops_lab.kube.client import connect
from helpers.gitutil import commit_and_push, git
from testbed.processes import wait_until
from testbed.watching import watch_until

# Well inside the 120 s reconciliation period: polling cannot explain a refresh seen within it.
WEBHOOK_WAIT = 60
NAMESPACE = "hook-dev"


def _manifests(work: Path, message: str) -> None:
    d = work / "overlays" / "dev"
    d.mkdir(parents=True, exist_ok=True)
    (d / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- config.yaml\n"
    )
    (d / "config.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: model-config\ndata:\n  message: {message!r}\n"
    )


def _push(work: Path, url: str, message: str) -> str:
    _manifests(work, message)
    return commit_and_push(work, url, message)


@dataclasses.dataclass
class Lab:
    """One lab repository on Gitea, its working copy, and the Argo CD Application that tracks it."""

    engine: ArgoCD
    app: str
    push_url: str
    work: Path

    def push(self, message: str) -> str:
        return _push(self.work, self.push_url, message)


@pytest.fixture(scope="module")
def hooked(request, testbed_gitea, testbed_cluster, testbed_argocd, tmp_path_factory):
    """Two lab repositories on Gitea, each tracked by an Application: ``lab`` announces pushes to
    argocd-server signed with the kept secret, ``lab-wrong`` signs them with another one."""
    gitea = testbed_gitea
    # the session's Gitea is shared by every module: this one's accounts are its own
    accounts = load_or_create_accounts(
        tmp_path_factory.mktemp("forge") / "forge-credentials.json",
        learner="hook-learner",
        reviewers=("hook-reviewer",),
        admin="hook-admin",
        engine="hook-engine",
    )
    create = gitea_cli_admin_creator(gitea.cli())
    kube = connect(testbed_cluster.kubeconfig)
    # the product's side: argocd-server checks Gitea's signature with the kept secret
    assert ArgoCD(kube).accept_push_webhooks(accounts.webhook_secret) == [
        f"Secret/{SETTINGS_SECRET} {GOGS_WEBHOOK_SECRET_KEY}"
    ]
    assert ArgoCD(kube).accept_push_webhooks(accounts.webhook_secret) == []
    server = request.getfixturevalue("testbed_argocd_server")  # started after the secret: no restart to wait out
    webhook_url = f"{server.server_url}{ArgoCD.push_webhook_path}"
    kube.core().create_namespace({"metadata": {"name": NAMESPACE}})

    labs = {}
    for name, tenant, signing in (
        ("lab", "hook", accounts),
        ("lab-wrong", "hookwrong", dataclasses.replace(accounts, webhook_secret="not-the-kept-secret-0123456789")),
    ):
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
        engine = ArgoCD(kube, tenant=tenant)
        # Argo CD clones over HTTP as the engine account (read access given by seed_lab)
        engine.register(
            [EnvironmentTarget("dev", NAMESPACE, "overlays/dev")],
            RepoAccess(
                f"{gitea.url}/{owner}/{name}.git", username=accounts.engine.username, password=accounts.engine.password
            ),
        )
        engine.wait_applied("dev", first, Deadline(180))
        labs[name] = Lab(engine, engine.object_name("dev"), push_url, work)
    return labs, gitea, testbed_argocd


def _revision_reaches(engine_fixture, app: str, sha: str, timeout: float) -> None:
    """Wait (bounded) until ``app`` reports ``sha``, requesting no refresh."""
    from kubernetes import client

    with engine_fixture.cluster.api_client() as api:
        watch_until(
            f"Application {app} at revision {sha[:7]}",
            client.CustomObjectsApi(api).list_namespaced_custom_object,
            lambda a: ((a.get("status") or {}).get("sync") or {}).get("revision") == sha,
            timeout,
            engine_fixture.check_health,
            group="argoproj.io",
            version="v1alpha1",
            namespace=engine_fixture.namespace,
            plural="applications",
            field_selector=f"metadata.name={app}",
        )


def _delivery(gitea, url: str, sha: str):
    """Gitea's record of the (delivered) push webhook for ``sha``, waited for within 60 s."""

    def delivered():
        return next((d for d in gitea.deliveries() if d.url == url and d.after == sha and d.delivered), None)

    return wait_until(f"Gitea's delivery of {sha[:7]} to {url}", delivered, 60, gitea.check_health)


def test_polling_is_slow_here(hooked):
    _, _, argocd = hooked
    # What makes a refresh within WEBHOOK_WAIT the webhook's doing: the running controller's resync period.
    # Its flag, not argocd-cm: the flag wins over the ConfigMap, and other tests on the shared testbed
    # install Argo CD's manifests with the lab's patches (timeout.reconciliation 20s) into that ConfigMap.
    assert "--app-resync=120" in argocd.procs["argocd-application-controller"].args
    assert WEBHOOK_WAIT < 120


def test_a_push_refreshes_the_application_through_the_webhook(hooked):
    labs, gitea, argocd = hooked
    lab = labs["lab"]
    sha = lab.push("v2")
    _revision_reaches(argocd, lab.app, sha, WEBHOOK_WAIT)
    record = _delivery(gitea, f"{argocd.server_url}/api/webhook", sha)
    assert record.succeeded and 200 <= record.status < 300, record


def test_a_wrongly_signed_delivery_is_refused_and_the_reconcile_request_still_brings_the_change(hooked):
    labs, gitea, argocd = hooked
    good, wrong = labs["lab"], labs["lab-wrong"]
    stale = wrong.engine.status("dev").revision
    refused_sha = wrong.push("v2")
    record = _delivery(gitea, f"{argocd.server_url}/api/webhook", refused_sha)
    assert not record.succeeded and record.status == 400, record
    # a correctly signed push made after it is handled within the wait; the refused one was not
    good_sha = good.push("v3")
    _revision_reaches(argocd, good.app, good_sha, WEBHOOK_WAIT)
    assert wrong.engine.status("dev").revision == stale
    # the fallback: the CLI's own reconcile request (polling would also get there, within 120 to 180 s)
    applied = wrong.engine.wait_applied("dev", refused_sha, Deadline(120))
    assert applied.revision == refused_sha

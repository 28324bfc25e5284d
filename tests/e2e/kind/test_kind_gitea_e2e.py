"""`gitops-lab up --git-server gitea` on real kind, for both engines (the kind bed, Gitea's image built there).

For each engine, one environment brought up with Gitea as the lab's Git server, then:
- Gitea runs in the cluster and holds ``learner/lab``; every environment is synced and healthy; `up` again
  changes nothing;
- the pipeline-design lab's review step (skipped on the built-in server) opens its pull request and passes;
- staging is a plain push; prod goes through a pull request that the reviewer account approves, and real
  pods serve the merged version;
- a learner's plain `git push` reaches the engine through Gitea's push webhook: argocd-server (its log
  names the push) and the Application serves the pushed commit; Flux's Receiver (notification-controller
  logs the event, the GitRepository carries its reconcile request) and the Kustomization applies the commit.
"""

from __future__ import annotations

import json
import subprocess
import time
from xml.etree import ElementTree
from pathlib import Path

import pytest
from helpers.artifacts import artifacts_dir
from helpers.browser import playwright_env
from helpers.gitutil import run_git

from kindbed.fixtures import wait_for_free_lab_ports
from kindbed.layout import cache_root


UP_TIMEOUT = "900"
FORGE = "http://localhost:8180"
DRIVER = Path(__file__).with_name("gitea_ui_review.cjs")


def _proxy(api, namespace: str, path: str) -> dict:
    from gitops_lab.kube.rest import request

    return request(api, "GET", f"/api/v1/namespaces/{namespace}/services/model-server:http/proxy/{path}")


@pytest.fixture(scope="module", params=["flux", "argocd"])
def forge_env(request, kind_bed):
    engine = request.param
    name = f"e2e-gitea-{engine}"
    wait_for_free_lab_ports()
    run = kind_bed.gitops_lab(
        "up",
        "--engine",
        engine,
        "--git-server",
        "gitea",
        "--preload",
        "--engine-manifests",
        str(kind_bed.manifests),
        "--timeout",
        UP_TIMEOUT,
        "--output",
        "json",
        name=name,
    )
    yield kind_bed, name, engine, run
    kind_bed.gitops_lab("down", name=name, check=False)


def _accounts(bed, name: str):
    from gitops_lab.adapters.forge.seed import read_accounts

    return read_accounts(bed.home / "state" / name / "forge-credentials.json")


def test_up_brings_gitea_and_every_environment_up(forge_env):
    bed, name, engine, run = forge_env
    result = run.json()
    assert (result["engine"], result["clone_url"], result["forge_url"]) == (
        engine,
        f"{FORGE}/learner/lab.git",
        FORGE,
    )
    assert {e["environment"]: (e["synced"], e["healthy"]) for e in result["environments"]} == {
        "dev": (True, True),
        "staging": (True, True),
        "prod": (True, True),
    }
    from kubernetes import client

    api = bed.api(name)
    gitea = client.AppsV1Api(api).read_namespaced_deployment("gitea", "gitops-lab-git")
    assert gitea.status.available_replicas == 1
    assert gitea.spec.template.spec.containers[0].image.startswith("docker.gitea.com/gitea:1.27.3-rootless@sha256:")
    # the engines fetch from Gitea's Service, as the read-only engine account
    from gitops_lab.adapters.forge.gitea import GiteaAPI

    accounts = _accounts(bed, name)
    forge = GiteaAPI(FORGE, accounts.admin)
    repo = forge.repository("learner", "lab")
    assert repo is not None and repo["private"] is True
    rule = forge.branch_protection("learner", "lab", "main")
    assert rule is not None and rule["required_approvals"] == 1
    assert rule["approvals_whitelist_username"] == [r.username for r in accounts.reviewers]
    assert "overlays/prod" not in rule["unprotected_file_patterns"]
    assert forge.repository("learner", "ml-platform-pipelines") is not None

    # the same engine manifests as the first run (the bed has no network to fetch the release from)
    again = bed.gitops_lab(
        "up",
        "--engine",
        engine,
        "--git-server",
        "gitea",
        "--engine-manifests",
        str(bed.manifests),
        "--output",
        "json",
        name=name,
    ).json()
    assert again["changed"] == []


def test_the_design_lab_opens_its_pull_request_on_the_labs_gitea(forge_env, tmp_path):
    """The pipeline-design lab's review step, which a lab on the built-in server skips, runs here: its check
    fails before the solve opens the design pull request, and passes after. Before any promotion: the lab's
    setup restores the seed, and main takes a push only where it leaves prod and the base alone."""
    bed, name, _, _ = forge_env
    junit = tmp_path / "design.xml"
    run = bed.gitops_lab("lab", "test", "pipeline-design", "--junit", str(junit), name=name, check=False, timeout=900)
    assert run.returncode == 0, f"lab test pipeline-design failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    cases = {c.get("name"): c for c in ElementTree.fromstring(junit.read_text()).iter("testcase")}
    review = cases["open-for-review"]
    assert review.find("skipped") is None and review.find("failure") is None


def _learner_sees_the_pull_request_in_a_browser(bed, engine: str, learner, number: int, reviewer: str) -> None:
    """Headless Chromium logs in to Gitea as the learner, opens the lab repository and the pull request: the
    gate statuses and the approving review are on the page. Screenshots kept in the test artifacts."""
    env = playwright_env(cache_root())
    shots = artifacts_dir() / f"gitea-ui-{engine}"
    shots.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["node", str(DRIVER), FORGE, learner.username, learner.password, "learner/lab", str(number), str(shots)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"the browser could not open the pull request:\n{proc.stderr[-4000:]}"
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"Gitea UI screenshots: {shots}")
    assert "overlays" in seen["files"] and "base" in seen["files"]
    assert seen["styled"] is True  # the web frontend is built into the image
    assert f"{reviewer} approved these changes" in seen["pull_request"]
    assert "All checks were successful" in seen["pull_request"]
    for gate in ("data-quality", "model-eval", "policy"):
        assert f"gitops-lab/{gate}" in seen["pull_request"]  # shown on the page, not only in its HTML
    for shot in ("gitea-repository.png", "gitea-pull-request.png"):
        assert (shots / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prod_is_promoted_by_a_pull_request_a_reviewer_approves_and_real_pods_serve_it(forge_env):
    bed, name, engine, _ = forge_env
    from gitops_lab.adapters.forge.gitea import GiteaAPI

    accounts = _accounts(bed, name)
    api = GiteaAPI(FORGE, accounts.learner)
    staged = bed.gitops_lab("promote", "--from", "dev", "--to", "staging", "--timeout", "300", name=name)
    assert "staging" in staged.stdout
    # exit 1 while another environment still reconciles (the push's webhook asked Flux to look at all three):
    # only staging's row is read here
    status = json.loads(bed.gitops_lab("status", "--output", "json", name=name, check=False).stdout)
    staging = next(r for r in status if r["environment"] == "staging")["git_version"]

    opened = bed.gitops_lab("promote", "--from", "staging", "--to", "prod", "--timeout", "300", name=name)
    [pr] = api.pull_requests("learner", "lab", state="open")
    assert pr.head == f"promote/prod-{staging}" and "waiting for review" in opened.stdout
    assert f"{FORGE}/learner/lab/pulls/{pr.number}" in opened.stdout  # the host's URL, not the cluster's
    reviewer = accounts.reviewers[0].username
    bed.gitops_lab("approve", "--env", "prod", "--version", staging, "--by", reviewer, name=name)
    _learner_sees_the_pull_request_in_a_browser(bed, engine, accounts.learner, pr.number, reviewer)
    merged = bed.gitops_lab("promote", "--from", "staging", "--to", "prod", "--timeout", "300", name=name)
    assert f"merged pull request #{pr.number} (approved by {reviewer})" in merged.stdout
    assert api.pull_request("learner", "lab", pr.number).merged
    served = _proxy(bed.api(name), "ml-prod", "version")
    assert served["loaded"] is True and served["model_version"] == staging


def _pod_log(api, namespace: str, selector: str) -> str:
    from kubernetes import client

    core = client.CoreV1Api(api)
    [pod] = core.list_namespaced_pod(namespace, label_selector=selector).items
    assert pod.metadata is not None and pod.metadata.name
    return core.read_namespaced_pod_log(pod.metadata.name, namespace, since_seconds=600)


def _wait_for_log(api, namespace: str, selector: str, line: str, who: str) -> None:
    end = time.monotonic() + 60
    while True:
        log = _pod_log(api, namespace, selector)
        if line in log:
            return
        assert time.monotonic() < end, f"{who} logged no push event for learner/lab:\n{log[-3000:]}"
        time.sleep(2)


def _wait_for(what: str, read, done) -> dict:
    end = time.monotonic() + 90
    while True:
        obj = read()
        if done(obj):
            return obj
        assert time.monotonic() < end, f"{what}: {obj.get('status')}"
        time.sleep(2)


def test_a_plain_push_reaches_the_engine_through_the_webhook(forge_env, tmp_path):
    from kubernetes import client

    bed, name, engine, _ = forge_env
    accounts = _accounts(bed, name)
    learner = accounts.learner
    url = f"http://{learner.username}:{learner.password}@localhost:8180/learner/lab.git"
    work = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, timeout=120)
    kustomization = work / "overlays" / "dev" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "\n# touched by the webhook test\n")
    run_git("commit", "-qam", "touch dev", cwd=work)
    run_git("push", "-q", "origin", "HEAD:main", cwd=work)
    sha = run_git("rev-parse", "HEAD", cwd=work).stdout.strip()
    api = bed.api(name)
    objects = client.CustomObjectsApi(api)
    if engine == "argocd":
        # argocd-server logs each push event it takes; the repository URL in it is the one the engine fetches
        _wait_for_log(
            api,
            "argocd",
            "app.kubernetes.io/name=argocd-server",
            "Received push event repo: http://gitea.gitops-lab-git.svc.cluster.local:3000/learner/lab",
            "argocd-server",
        )
        _wait_for(
            f"Application gitops-lab-dev at {sha[:7]}",
            lambda: objects.get_namespaced_custom_object(
                "argoproj.io", "v1alpha1", "argocd", "applications", "gitops-lab-dev"
            ),
            lambda app: ((app.get("status") or {}).get("sync") or {}).get("revision") == sha,
        )
        return
    # Flux: notification-controller's Receiver checks the delivery's GitHub-style signature and logs the event
    _wait_for_log(
        api, "flux-system", "app=notification-controller", "handling GitHub event: push", "notification-controller"
    )
    source = _wait_for(
        f"GitRepository gitops-lab-dev at {sha[:7]}",
        lambda: objects.get_namespaced_custom_object(
            "source.toolkit.fluxcd.io", "v1", "flux-system", "gitrepositories", "gitops-lab-dev"
        ),
        lambda repo: ((repo.get("status") or {}).get("artifact") or {}).get("revision", "").endswith(sha),
    )
    # the reconcile request the Receiver wrote (Go's time String: "2026-12-07 17:57:06.12 +0000 UTC m=+25.88";
    # the CLI writes ISO 8601), and source-controller handled it
    requested = source["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    assert " +0000 UTC" in requested, requested
    assert source["status"].get("lastHandledReconcileAt") == requested
    served = _wait_for(
        f"Kustomization gitops-lab-dev at {sha[:7]}",
        lambda: objects.get_namespaced_custom_object(
            "kustomize.toolkit.fluxcd.io", "v1", "flux-system", "kustomizations", "gitops-lab-dev"
        ),
        lambda k: (k.get("status") or {}).get("lastAppliedRevision", "").endswith(sha),
    )
    assert served

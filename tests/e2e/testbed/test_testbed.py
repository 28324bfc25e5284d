"""Self-tests of the testbed: the real controllers do the real work.

Plain Kubernetes API calls only; the product's engine adapters are not used here.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from pathlib import Path

import pytest

from testbed.cluster import start_cluster
from testbed.engines import start_argocd, start_flux
from testbed.processes import TestbedError, port_is_free
from testbed.watching import watch_until
from helpers.gitutil import run_git

TIMEOUT = 180  # per wait; the controllers usually take seconds


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _write_app(workdir: Path, namespace: str, message: str, replicas: int = 2) -> None:
    """A kustomize dir: a ConfigMap carrying `message` and a Deployment."""
    d = workdir / "deploy"
    d.mkdir(parents=True, exist_ok=True)
    (d / "kustomization.yaml").write_text(
        f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {namespace}\nresources:\n- app.yaml\n"
    )
    (d / "app.yaml").write_text(f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  message: "{message}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {{app: app}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
      annotations: {{message: "{message}"}}
    spec:
      containers:
      - name: app
        image: registry.invalid/never-pulled:1
""")


def _commit_and_push(workdir: Path, msg: str) -> str:
    run_git("add", "-A", cwd=workdir)
    run_git("commit", "-q", "-m", msg, cwd=workdir)
    run_git("push", "-q", "origin", "HEAD:main", cwd=workdir)
    return run_git("rev-parse", "HEAD", cwd=workdir).stdout.strip()


def _deployment_available(d) -> bool:
    st = d.status
    if not st or (st.observed_generation or 0) < d.metadata.generation:
        return False
    want = d.spec.replicas or 0
    ok = any(c.type == "Available" and c.status == "True" for c in (st.conditions or []))
    return ok and (st.updated_replicas or 0) == want and (st.ready_replicas or 0) == want and (st.replicas or 0) == want


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _ready(obj: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


@pytest.fixture
def k8s(testbed_cluster):
    from kubernetes import client

    api = testbed_cluster.api_client()
    yield {"core": client.CoreV1Api(api), "apps": client.AppsV1Api(api), "custom": client.CustomObjectsApi(api)}
    api.close()


def _wait_configmap(k8s, ns: str, message: str, health) -> None:
    watch_until(
        f"ConfigMap {ns}/app-config with message={message}",
        k8s["core"].list_namespaced_config_map,
        lambda cm: (cm.data or {}).get("message") == message,
        TIMEOUT,
        health,
        namespace=ns,
        field_selector="metadata.name=app-config",
    )


def _wait_rolled_out(k8s, ns: str, message: str, health) -> None:
    watch_until(
        f"Deployment {ns}/app rolled out with message={message}",
        k8s["apps"].list_namespaced_deployment,
        lambda d: _deployment_available(d) and (d.spec.template.metadata.annotations or {}).get("message") == message,
        TIMEOUT,
        health,
        namespace=ns,
        field_selector="metadata.name=app",
    )


# --------------------------------------------------------------------------- #
# cluster
# --------------------------------------------------------------------------- #
def test_cluster_version_and_nodes(testbed_cluster, k8s):
    from kubernetes import client
    from gitops_lab.versions import pinned

    with testbed_cluster.api_client() as api:
        info = client.VersionApi(api).get_code()
    assert info.git_version == pinned()["kubernetes"]["version"]
    nodes = k8s["core"].list_node(label_selector="type=kwok").items
    assert nodes, "no kwok node"
    testbed_cluster.check_health()


def test_deployment_becomes_available(testbed_cluster, k8s):
    ns = "testbed-deploy"
    k8s["core"].create_namespace({"metadata": {"name": ns}})
    k8s["apps"].create_namespaced_deployment(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
                },
            },
        },
    )
    d = watch_until(
        "Deployment testbed-deploy/web Available",
        k8s["apps"].list_namespaced_deployment,
        _deployment_available,
        TIMEOUT,
        testbed_cluster.check_health,
        namespace=ns,
        field_selector="metadata.name=web",
    )
    assert d.status.ready_replicas == 3
    pods = k8s["core"].list_namespaced_pod(ns, label_selector="app=web").items
    assert len(pods) == 3 and all(p.status.phase == "Running" and p.spec.node_name for p in pods)


# --------------------------------------------------------------------------- #
# Flux
# --------------------------------------------------------------------------- #
def test_flux_applies_commits_from_git(testbed_cluster, testbed_git, testbed_flux, k8s, tmp_path):
    ns, fns = "flux-e2e", testbed_flux.namespace
    url = testbed_git.create_repo("flux-e2e")
    work = tmp_path / "repo"
    run_git("clone", "-q", url, str(work), cwd=tmp_path)
    _write_app(work, ns, "v1")
    sha1 = _commit_and_push(work, "v1")
    k8s["core"].create_namespace({"metadata": {"name": ns}})
    custom = k8s["custom"]
    custom.create_namespaced_custom_object(
        "source.toolkit.fluxcd.io",
        "v1",
        fns,
        "gitrepositories",
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "flux-e2e"},
            "spec": {"url": url, "interval": "10m", "ref": {"branch": "main"}, "timeout": "60s"},
        },
    )
    custom.create_namespaced_custom_object(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        fns,
        "kustomizations",
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "flux-e2e"},
            "spec": {
                "interval": "10m",
                "path": "./deploy",
                "prune": True,
                "wait": True,
                "timeout": "2m",
                "sourceRef": {"kind": "GitRepository", "name": "flux-e2e"},
            },
        },
    )
    health = testbed_flux.check_health

    def applied(sha):
        return lambda k: _ready(k) and (k.get("status") or {}).get("lastAppliedRevision") == f"main@sha1:{sha}"

    watch_until(
        f"Kustomization applied main@sha1:{sha1}",
        custom.list_namespaced_custom_object,
        applied(sha1),
        TIMEOUT,
        health,
        group="kustomize.toolkit.fluxcd.io",
        version="v1",
        namespace=fns,
        plural="kustomizations",
        field_selector="metadata.name=flux-e2e",
    )
    _wait_configmap(k8s, ns, "v1", health)
    _wait_rolled_out(k8s, ns, "v1", health)

    _write_app(work, ns, "v2", replicas=3)
    sha2 = _commit_and_push(work, "v2")
    stamp = {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": _now()}}}
    custom.patch_namespaced_custom_object("source.toolkit.fluxcd.io", "v1", fns, "gitrepositories", "flux-e2e", stamp)
    custom.patch_namespaced_custom_object("kustomize.toolkit.fluxcd.io", "v1", fns, "kustomizations", "flux-e2e", stamp)
    watch_until(
        f"Kustomization applied main@sha1:{sha2}",
        custom.list_namespaced_custom_object,
        applied(sha2),
        TIMEOUT,
        health,
        group="kustomize.toolkit.fluxcd.io",
        version="v1",
        namespace=fns,
        plural="kustomizations",
        field_selector="metadata.name=flux-e2e",
    )
    _wait_configmap(k8s, ns, "v2", health)
    _wait_rolled_out(k8s, ns, "v2", health)


# --------------------------------------------------------------------------- #
# Argo CD
# --------------------------------------------------------------------------- #
def test_argocd_syncs_commits_from_git(testbed_cluster, testbed_git, testbed_argocd, k8s, tmp_path):
    ns, ans = "argo-e2e", testbed_argocd.namespace
    url = testbed_git.create_repo("argo-e2e")
    work = tmp_path / "repo"
    run_git("clone", "-q", url, str(work), cwd=tmp_path)
    _write_app(work, ns, "v1")
    sha1 = _commit_and_push(work, "v1")
    custom = k8s["custom"]
    custom.create_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        ans,
        "applications",
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "argo-e2e"},
            "spec": {
                "project": "default",
                "source": {"repoURL": url, "targetRevision": "main", "path": "deploy"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
            },
        },
    )
    health = testbed_argocd.check_health

    def synced(sha):
        def pred(app):
            st = app.get("status") or {}
            return (
                (st.get("sync") or {}).get("status") == "Synced"
                and (st.get("sync") or {}).get("revision") == sha
                and (st.get("health") or {}).get("status") == "Healthy"
            )

        return pred

    kw = dict(
        group="argoproj.io",
        version="v1alpha1",
        namespace=ans,
        plural="applications",
        field_selector="metadata.name=argo-e2e",
    )
    watch_until(
        f"Application Synced+Healthy at {sha1}",
        custom.list_namespaced_custom_object,
        synced(sha1),
        TIMEOUT,
        health,
        **kw,
    )
    _wait_configmap(k8s, ns, "v1", health)
    _wait_rolled_out(k8s, ns, "v1", health)

    _write_app(work, ns, "v2", replicas=3)
    sha2 = _commit_and_push(work, "v2")
    custom.patch_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        ans,
        "applications",
        "argo-e2e",
        {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}},
    )
    watch_until(
        f"Application Synced+Healthy at {sha2}",
        custom.list_namespaced_custom_object,
        synced(sha2),
        TIMEOUT,
        health,
        **kw,
    )
    _wait_configmap(k8s, ns, "v2", health)
    _wait_rolled_out(k8s, ns, "v2", health)


# --------------------------------------------------------------------------- #
# failure and teardown behaviour
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "engine,component",
    [
        ("testbed_flux", "kustomize-controller"),
        ("testbed_argocd", "argocd-repo-server"),
    ],
)
def test_killed_controller_fails_health_check_loudly(request, engine, component):
    eng = request.getfixturevalue(engine)
    eng.check_health()
    proc = eng.procs[component]
    os.kill(proc.pid, signal.SIGKILL)
    t0 = time.monotonic()
    deadline = t0 + 10
    err = None
    while time.monotonic() < deadline:
        try:
            eng.check_health()
        except TestbedError as exc:
            err = exc
            break
        time.sleep(0.05)
    assert err is not None, f"check_health did not notice {component} was killed"
    assert component in str(err) and "exited" in str(err)
    # a wait on the API stops at once too, instead of running to its deadline
    from kubernetes import client

    with eng.cluster.api_client() as api:
        t1 = time.monotonic()
        with pytest.raises(TestbedError, match=component):
            watch_until(
                "something that never happens",
                client.CoreV1Api(api).list_namespace,
                lambda _: False,
                120,
                eng.check_health,
            )
        # Not a speed check: far below the wait's own 120 s deadline means it did not hang.
        assert time.monotonic() - t1 < 60
    eng.restart(component)
    eng.check_health()


def test_stopping_leaves_no_processes_behind(tmp_path):
    """A private full stack, stopped: no process of it is left and its ports are free."""
    cluster = start_cluster(tmp_path / "stack")
    stacks = [cluster]
    try:
        stacks.append(start_flux(cluster))
        stacks.append(start_argocd(cluster))
        pids = [p for s in stacks for p in s.pids().values()]
        ports = [p for s in stacks for p in s.ports.values()]
        assert all(_pid_alive(p) for p in pids)
    finally:
        problems = []
        for s in reversed(stacks):
            problems += s.stop()
    assert not problems, problems
    assert not [p for p in pids if _pid_alive(p)]
    assert all(port_is_free(p) for p in ports), [p for p in ports if not port_is_free(p)]
    leftovers = _procs_mentioning(str(tmp_path))
    assert not leftovers, f"processes still referring to the stack's directory: {leftovers}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _procs_mentioning(text: str) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (d / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if (text in cmd or text in env) and _pid_alive(int(d.name)):
            found.append(f"{d.name}: {cmd[:200]}")
    return found

"""The Git server's rendered manifests applied to the testbed (a real kube-apiserver).

Applied with the same server-side apply the `up` workflow uses. Proves: the
API server accepts every object as rendered (schema, defaults, NodePort in
range), the PVC binds, the scheduler places the pod, and the Deployment turns
Available. Pods are simulated by kwok there, so this does NOT prove the image
pulls, that server.py starts in it, that the probes pass for real, that the
volume is writable by uid 1000, or that the NodePort is reachable through
kind's port mapping; test_gitserver.py runs the server itself locally, and
tests/e2e/kind/test_kind_real.py (`pytest -m kind`, on the kind bed) covers the rest on a real kind.
"""

from __future__ import annotations

import time

import pytest

from gitops_lab.adapters.gitserver.incluster import InClusterGitServer


def test_gitserver_manifests_apply_and_become_available(testbed_cluster, tmp_path, monkeypatch):
    from kubernetes import client, watch

    from gitops_lab.kube.apply import Applier
    from gitops_lab.kube.client import connect

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    server = InClusterGitServer("testbed")
    objects = server.manifests()
    kube = connect(testbed_cluster.kubeconfig)
    # kind ships a default StorageClass; the testbed has none, so a PV stands in for it.
    core = client.CoreV1Api(kube.api)
    core.create_persistent_volume(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "gitserver-testbed-pv"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "hostPath": {"path": str(tmp_path / "pv")},
            },
        }
    )
    applier = Applier(kube)
    applier.apply_all(objects)
    applier.apply_all(objects)  # a second apply (re-run of `up`) is accepted unchanged

    ns = server.settings.namespace
    for obj in objects:
        found = applier.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        assert found is not None, f"{obj['kind']} {obj['metadata']['name']} was not created"
    service = core.read_namespaced_service("gitserver", ns)
    assert service.spec.ports[0].node_port == server.settings.ports.git_node

    apps = client.AppsV1Api(kube.api)
    deadline = time.monotonic() + 120
    last = None

    def available(dep) -> bool:
        conds = {c.type: c.status for c in (dep.status.conditions or [])}
        return conds.get("Available") == "True" and (dep.status.ready_replicas or 0) == 1

    dep = apps.read_namespaced_deployment("gitserver", ns)
    if not available(dep):
        w = watch.Watch()
        for event in w.stream(
            apps.list_namespaced_deployment,
            ns,
            field_selector="metadata.name=gitserver",
            resource_version=dep.metadata.resource_version,
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        ):
            last = event["object"]
            if available(last):
                w.stop()
                break
        else:
            pvc = core.read_namespaced_persistent_volume_claim("gitserver-data", ns)
            pytest.fail(f"Deployment not Available in 120s; last status {last and last.status}; PVC {pvc.status.phase}")
    pvc = core.read_namespaced_persistent_volume_claim("gitserver-data", ns)
    assert pvc.status.phase == "Bound"

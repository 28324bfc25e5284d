"""Managed install on the testbed: download from a local HTTP server, cache,
integrity check, server-side apply, and the waits (CRDs Established,
controllers Available). The manifests are built by the test from the real CRDs
the testbed build extracted; Deployments' pods are simulated by kwok."""

from __future__ import annotations

import pytest
import yaml
from helpers.httpserve import OneFileServer

from gitops_lab.adapters.engines import engine_for
from gitops_lab.errors import DownloadError
from gitops_lab.kube.client import connect
from gitops_lab.deadline import Deadline
from gitops_lab.reporter import Reporter

IMAGE = "registry.invalid/stand-in@sha256:" + "0" * 64


def deployment(name: str, namespace: str, kind: str = "Deployment") -> dict:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            **({"serviceName": name} if kind == "StatefulSet" else {}),
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "main", "image": IMAGE}]}},
        },
    }


def crds(folder) -> list[dict]:
    return [doc for path in sorted(folder.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def flux_release(crd_dir) -> str:
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}},
        *crds(crd_dir / "source-controller"),
        *crds(crd_dir / "kustomize-controller"),
        *crds(crd_dir / "notification-controller"),
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "helmreleases.helm.toolkit.fluxcd.io"},
            "spec": {
                "group": "helm.toolkit.fluxcd.io",
                "names": {"kind": "HelmRelease", "plural": "helmreleases"},
                "scope": "Namespaced",
                "versions": [],
            },
        },
        deployment("source-controller", "flux-system"),
        deployment("kustomize-controller", "flux-system"),
        deployment("notification-controller", "flux-system"),
        deployment("helm-controller", "flux-system"),
    ]
    return yaml.safe_dump_all(docs)


def pinned_argocd_install() -> bytes:
    """Argo CD's real install.yaml at the pinned tag, from its Go module (byte-identical to the pinned SHA-256)."""
    import json
    import subprocess

    from gitops_lab.versions import pinned

    version = pinned()["argocd"]["version"]
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"github.com/argoproj/argo-cd/v3@{version}"],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=300,
    )
    info = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "Dir" not in info:
        pytest.skip(f"Argo CD's Go module is not available: {info.get('Error') or out.stderr.strip()}")
    from pathlib import Path

    return (Path(info["Dir"]) / "manifests" / "install.yaml").read_bytes()


@pytest.fixture
def kube(testbed_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    return connect(testbed_cluster.kubeconfig)


def test_flux_managed_install_applies_only_what_the_lab_needs_and_waits(kube, tmp_path):
    from testbed.binaries import crd_dir

    server = OneFileServer(flux_release(crd_dir()).encode())
    try:
        flux = engine_for("flux", kube)
        report = flux.install("managed", Reporter(), Deadline(120), source_url=server.url)
        assert report.mode == "managed" and report.changed
        apps = kube.apps()
        for name in ("source-controller", "kustomize-controller", "notification-controller"):
            dep = apps.read_namespaced_deployment(name, "flux-system")
            assert dep.status.available_replicas == 1, name
        # the Receiver kind the forge's push webhooks need is installed with it
        assert flux.applier.get(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", "receivers.notification.toolkit.fluxcd.io"
        )
        names = {d.metadata.name for d in apps.list_namespaced_deployment("flux-system").items}
        assert "helm-controller" not in names
        assert (
            flux.applier.get(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", "helmreleases.helm.toolkit.fluxcd.io"
            )
            is None
        )
        cached = tmp_path / "cache" / "manifests" / "flux"
        assert list(cached.glob("*/install.yaml")) and server.hits == 1
        # Again: the cache is used, the check finds it intact, and nothing changes.
        again = flux.install("managed", Reporter(), Deadline(60), source_url=server.url)
        assert server.hits == 1
        assert not again.changed, again.details
        # A damaged cache is fetched again.
        [path] = list(cached.glob("*/install.yaml"))
        path.write_text("kind: Broken\n")
        flux.install("managed", Reporter(), Deadline(60), source_url=server.url)
        assert server.hits == 2 and "source-controller" in path.read_text()
    finally:
        server.stop()


def test_argocd_managed_install_patches_waits_and_exposes_the_ui(kube):
    # the real release, served as a mirror would: the pin applies to it as to a download
    server = OneFileServer(pinned_argocd_install())
    try:
        argo = engine_for("argocd", kube)
        argo.serve_ui(30443)
        argo.install("managed", Reporter(), Deadline(120), source_url=server.url)
        core, apps = kube.core(), kube.apps()
        assert core.read_namespaced_config_map("argocd-cm", "argocd").data["timeout.reconciliation"] == "20s"
        service = core.read_namespaced_service("argocd-server", "argocd")
        assert service.spec.type == "NodePort"
        assert {p.name: p.node_port for p in service.spec.ports}["http"] == 30443
        assert apps.read_namespaced_stateful_set("argocd-application-controller", "argocd").status.ready_replicas == 1
        names = {d.metadata.name for d in apps.list_namespaced_deployment("argocd").items}
        assert {"argocd-server", "argocd-repo-server", "argocd-redis"} <= names
        assert "argocd-dex-server" not in names
    finally:
        server.stop()


def test_a_download_that_fails_the_pin_is_refused_before_anything_is_applied(kube, monkeypatch):
    server = OneFileServer(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: must-not-exist}\n")
    try:
        import gitops_lab.adapters.engines.base as base

        real = base.Engine.release

        def pinned_release(self, reporter, source_url=None):
            from gitops_lab.adapters.engines.release import fetch_release

            return fetch_release(self.name, "v-test", source_url, pinned_sha256="f" * 64)

        monkeypatch.setattr(base.Engine, "release", pinned_release)
        with pytest.raises(DownloadError, match="is not the pinned file: expected SHA-256 f{64}, got "):
            engine_for("flux", kube).install("managed", Reporter(), Deadline(30), source_url=server.url)
        monkeypatch.setattr(base.Engine, "release", real)
        assert kube.core().list_namespace(field_selector="metadata.name=must-not-exist").items == []
    finally:
        server.stop()

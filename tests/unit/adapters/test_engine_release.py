"""Managed install, the parts that need no cluster: download, cache, integrity,
and the lab's trimming of the upstream manifests. Served by a local HTTP server;
no test reaches the internet."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from helpers.httpserve import OneFileServer

from gitops_lab.adapters.engines.argocd import ArgoCD
from gitops_lab.adapters.engines.flux import Flux, revision_commit, status_of as flux_status
from gitops_lab.adapters.engines.argocd import status_of as argo_status, applied_verdict as argo_verdict
from gitops_lab.adapters.engines.release import fetch_release
from gitops_lab.errors import DownloadError, EngineError


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    server = OneFileServer(b"kind: ConfigMap\n")
    yield server
    server.stop()


def test_download_is_cached_and_reused(served, tmp_path):
    first = fetch_release("flux", "v0.0.1", served.url)
    assert first.source == "downloaded" and served.hits == 1
    assert first.path == tmp_path / "cache" / "manifests" / "flux" / "v0.0.1" / "install.yaml"
    assert first.sha256 == hashlib.sha256(b"kind: ConfigMap\n").hexdigest()
    again = fetch_release("flux", "v0.0.1", served.url)
    assert again.source == "cache" and served.hits == 1


def test_a_damaged_cache_is_detected_and_fetched_again(served):
    cached = fetch_release("flux", "v0.0.1", served.url)
    cached.path.write_text("kind: Tampered\n")
    again = fetch_release("flux", "v0.0.1", served.url)
    assert again.source == "downloaded" and served.hits == 2
    assert again.path.read_bytes() == b"kind: ConfigMap\n"


def test_a_download_that_does_not_match_the_pin_is_refused(served):
    with pytest.raises(DownloadError, match="is not the pinned file: expected SHA-256 0{64}, got "):
        fetch_release("argocd", "v0.0.1", served.url, pinned_sha256="0" * 64)
    good = hashlib.sha256(b"kind: ConfigMap\n").hexdigest()
    assert fetch_release("argocd", "v0.0.1", served.url, pinned_sha256=good).source == "downloaded"


def test_an_unreachable_url_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path))
    with pytest.raises(DownloadError) as info:
        fetch_release("flux", "v0.0.1", "http://127.0.0.1:9/install.yaml", timeout=5)
    assert "--engine-install external" in info.value.one_line()


def _doc(kind, name, **extra):
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, **extra}


def test_flux_keeps_the_source_kustomize_and_notification_controllers():
    docs = [
        _doc("Namespace", "flux-system"),
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "gitrepositories.source.toolkit.fluxcd.io"},
            "spec": {"group": "source.toolkit.fluxcd.io"},
        },
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "helmreleases.helm.toolkit.fluxcd.io"},
            "spec": {"group": "helm.toolkit.fluxcd.io"},
        },
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "receivers.notification.toolkit.fluxcd.io"},
            "spec": {"group": "notification.toolkit.fluxcd.io"},
        },
        _doc("Deployment", "source-controller"),
        _doc("Deployment", "kustomize-controller"),
        _doc("Deployment", "helm-controller"),
        _doc("Deployment", "notification-controller"),
        _doc("Service", "notification-controller"),
        _doc("Service", "source-controller"),
        _doc("ServiceAccount", "helm-controller"),
    ]
    kept = Flux.__new__(Flux).prepare_manifests(yaml.safe_dump_all(docs))
    assert [(o["kind"], o["metadata"]["name"]) for o in kept] == [
        ("Namespace", "flux-system"),
        ("CustomResourceDefinition", "gitrepositories.source.toolkit.fluxcd.io"),
        ("CustomResourceDefinition", "receivers.notification.toolkit.fluxcd.io"),
        ("Deployment", "source-controller"),
        ("Deployment", "kustomize-controller"),
        ("Deployment", "notification-controller"),
        ("Service", "notification-controller"),
        ("Service", "source-controller"),
    ]


def test_argocd_drops_dex_and_patches_reconciliation():
    docs = [
        _doc("ConfigMap", "argocd-cm", data={"existing": "kept"}),
        _doc("Deployment", "argocd-repo-server"),
        _doc("Deployment", "argocd-dex-server"),
        _doc("ClusterRole", "argocd-application-controller"),
    ]
    objects = ArgoCD.__new__(ArgoCD).prepare_manifests(yaml.safe_dump_all(docs))
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert ("Deployment", "argocd-dex-server") not in by_name
    assert by_name[("Namespace", "argocd")]
    cm = by_name[("ConfigMap", "argocd-cm")]
    assert cm["data"] == {"existing": "kept", "timeout.reconciliation": "20s", "timeout.reconciliation.jitter": "0s"}
    assert cm["metadata"]["namespace"] == "argocd"
    assert "namespace" not in by_name[("ClusterRole", "argocd-application-controller")]["metadata"]
    assert by_name[("ConfigMap", "argocd-cmd-params-cm")]["data"] == {"server.insecure": "true"}


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "revision,expected",
    [
        (f"main@sha1:{SHA}", SHA),
        (f"main/{SHA}", SHA),
        (None, None),
        ("", None),
    ],
)
def test_flux_revision_to_commit(revision, expected):
    assert revision_commit(revision) == expected


def _kustomization(ready: str, message: str = "", applied: str | None = SHA, generation: int = 2, observed: int = 2):
    status = {"observedGeneration": observed, "conditions": [{"type": "Ready", "status": ready, "message": message}]}
    if applied:
        status["lastAppliedRevision"] = status["lastAttemptedRevision"] = f"main@sha1:{applied}"
    return {"metadata": {"generation": generation}, "status": status}


def test_flux_status_reads_applied_commit_and_readiness():
    good = flux_status("dev", _kustomization("True"), None)
    assert (good.revision, good.synced, good.healthy, good.message) == (SHA, True, True, "")
    failing = flux_status("dev", _kustomization("False", "kustomize build failed: no such file"), None)
    assert (failing.healthy, failing.health_state, failing.message) == (
        False,
        "NotReady",
        "kustomize build failed: no such file",
    )
    stale = flux_status("dev", _kustomization("True", observed=1), None)
    assert not stale.synced


def _application(sync: str, health: str, revision: str = SHA, phase: str | None = "Succeeded", message: str = ""):
    status = {"sync": {"status": sync, "revision": revision}, "health": {"status": health}}
    if phase:
        status["operationState"] = {"phase": phase, "message": message}
    return {"status": status}


@pytest.mark.parametrize(
    "app,commit,ready",
    [
        (_application("Synced", "Healthy"), SHA, True),
        (_application("Synced", "Healthy"), "f" * 40, False),  # another commit
        (_application("OutOfSync", "Healthy"), SHA, False),
        (_application("Synced", "Progressing"), SHA, False),
        (_application("Synced", "Healthy", phase="Running"), SHA, False),  # sync still running
        (_application("Synced", "Healthy", phase=None), None, True),
    ],
)
def test_argocd_applied_verdict(app, commit, ready):
    assert argo_verdict(argo_status("prod", app), commit, app)[0] is ready


def test_argocd_status_carries_the_controller_message():
    app = _application("OutOfSync", "Degraded", phase="Failed", message="one or more objects failed to apply")
    state = argo_status("prod", app)
    assert "failed to apply" in state.message and not state.healthy


def test_a_local_manifest_file_or_folder_is_kept_when_it_matches_the_pin(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    data = b"kind: ConfigMap\n"
    good = hashlib.sha256(data).hexdigest()
    (tmp_path / "classroom" / "argocd").mkdir(parents=True)
    (tmp_path / "classroom" / "argocd" / "install.yaml").write_bytes(data)
    from_folder = fetch_release("argocd", "v0.0.1", str(tmp_path / "classroom"), pinned_sha256=good)
    assert from_folder.source == "local file" and from_folder.path.read_bytes() == data
    from_file = fetch_release(
        "argocd", "v0.0.1", str(tmp_path / "classroom" / "argocd" / "install.yaml"), pinned_sha256=good
    )
    assert from_file.sha256 == good


def test_a_local_manifest_that_fails_the_pin_is_refused_and_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "install.yaml").write_bytes(b"kind: Secret\n")
    with pytest.raises(DownloadError, match="is not the pinned file: expected SHA-256 0{64}, got "):
        fetch_release("argocd", "v0.0.1", str(tmp_path / "install.yaml"), pinned_sha256="0" * 64)
    assert not (tmp_path / "cache" / "manifests" / "argocd").exists()


def test_a_missing_local_manifest_names_the_expected_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(EngineError) as err:
        fetch_release("flux", "v0.0.1", str(tmp_path))
    assert "flux/install.yaml" in err.value.fix


def test_every_container_the_lab_installs_starts_from_a_preloaded_image():
    docs = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "argocd-server"},
            "spec": {
                "template": {
                    "spec": {
                        "initContainers": [
                            {"name": "copy", "image": "quay.io/argoproj/argocd:v1", "imagePullPolicy": "Always"}
                        ],
                        "containers": [
                            {"name": "server", "image": "quay.io/argoproj/argocd:v1", "imagePullPolicy": "Always"},
                            {"name": "sidecar", "image": "redis:8"},
                        ],
                    }
                }
            },
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"}},
    ]
    objects = ArgoCD.__new__(ArgoCD).lab_manifests(yaml.safe_dump_all(docs))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert {c["imagePullPolicy"] for c in spec["initContainers"] + spec["containers"]} == {"IfNotPresent"}


def test_flux_controllers_post_events_to_the_notification_controller_the_lab_keeps():
    controller = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "source-controller"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "manager",
                            "args": [
                                "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
                                "--watch-all-namespaces=true",
                                "--storage-path=/data",
                            ],
                        }
                    ]
                }
            }
        },
    }
    kept = Flux.__new__(Flux).prepare_manifests(yaml.safe_dump_all([controller]))
    assert kept[0]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
        "--watch-all-namespaces=true",
        "--storage-path=/data",
    ]


# -- Flux's pins (versions.yaml): the module-built copy for a local file; the release asset is not pinned yet


def _bed_flux_manifest():
    from kindbed.layout import cache_dir
    from kindbed.steps import engine_manifest

    return engine_manifest(cache_dir(), "flux")


def test_a_local_flux_manifest_that_is_not_the_module_built_copy_is_refused(tmp_path, monkeypatch):
    from gitops_lab.reporter import Reporter
    from gitops_lab.versions import pinned

    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "classroom" / "flux").mkdir(parents=True)
    (tmp_path / "classroom" / "flux" / "install.yaml").write_bytes(b"kind: Namespace\n")
    pin = pinned()["flux"]["module_built_sha256"]
    with pytest.raises(DownloadError, match=f"is not the pinned file: expected SHA-256 {pin}, got "):
        Flux().release(Reporter(), str(tmp_path / "classroom"))
    assert not (tmp_path / "cache" / "manifests" / "flux").exists()


def test_the_kind_beds_flux_manifest_is_the_pinned_module_built_copy(tmp_path, monkeypatch):
    manifest = _bed_flux_manifest()
    if not manifest.is_file():
        pytest.skip(f"the kind bed is not built ({manifest} missing): python tests/kindbed/build.py")
    from gitops_lab.reporter import Reporter

    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    cached = Flux().release(Reporter(), str(manifest))
    assert cached.source == "local file" and cached.path.read_bytes() == manifest.read_bytes()


def test_a_flux_download_is_trusted_on_first_use_while_the_release_asset_is_not_pinned(served):
    """versions.yaml has no install_sha256 for Flux (its release asset could not be fetched where it was
    written): a URL download is recorded, not refused, and the step line says it is not pinned."""
    import io

    from gitops_lab.reporter import PlainReporter
    from gitops_lab.versions import install_pins, pinned

    assert "install_sha256" not in pinned()["flux"]
    assert install_pins("flux", local=False) is None
    assert install_pins("argocd", local=False) == (pinned()["argocd"]["install_sha256"],)
    said = io.StringIO()
    cached = Flux().release(PlainReporter(said), served.url)
    assert cached.source == "downloaded"
    assert "not pinned in versions.yaml: trusted on first use" in said.getvalue()

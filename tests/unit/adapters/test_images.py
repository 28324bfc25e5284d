"""The image list is derived from what the lab deploys, not kept by hand."""

from __future__ import annotations

import textwrap

import pytest

from gitops_lab.adapters import images
from gitops_lab.adapters.images import apply_kustomize_images, engine_images, environment_images, lab_images
from gitops_lab.resources import environments_template
from gitops_lab.versions import pinned


def test_the_seeded_environments_run_the_pinned_model_server_image():
    assert environment_images(environments_template()) == [pinned()["images"]["model_server"]]


def test_environment_images_apply_each_overlays_image_overrides(tmp_path):
    deployment = """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          template:
            spec:
              initContainers: [{name: init, image: busybox:1.36}]
              containers: [{name: app, image: python:3.12-slim}]
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: not-a-workload}
        data: {image: "nginx:1"}
    """
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "deployment.yaml").write_text(textwrap.dedent(deployment))
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    for env, kustomization in {
        "dev": "images: [{name: python, newTag: 3.13-slim}]\n",
        "staging": "resources: [../../base]\n",
        "prod": "images: [{name: busybox, newName: mirror.local/busybox}]\n",
    }.items():
        (tmp_path / "overlays" / env).mkdir(parents=True)
        (tmp_path / "overlays" / env / "kustomization.yaml").write_text(kustomization)
    assert environment_images(tmp_path) == [
        "busybox:1.36",
        "mirror.local/busybox:1.36",
        "python:3.12-slim",
        "python:3.13-slim",
    ]


@pytest.mark.parametrize(
    "ref, rules, expected",
    [
        ("python:3.12-slim", [], "python:3.12-slim"),
        ("python:3.12-slim", [{"name": "python", "newTag": "3.13-slim"}], "python:3.13-slim"),
        ("python:3.12-slim", [{"name": "python", "newName": "mirror.local/python"}], "mirror.local/python:3.12-slim"),
        ("python:3.12-slim", [{"name": "python", "digest": "sha256:" + "b" * 64}], "python@sha256:" + "b" * 64),
        (
            "docker.io/library/python:3.12@sha256:" + "c" * 64,
            [{"name": "python", "newTag": "x"}],
            "docker.io/library/python:3.12@sha256:" + "c" * 64,
        ),
        ("localhost:5000/app:1", [{"name": "localhost:5000/app", "newTag": "2"}], "localhost:5000/app:2"),
    ],
)
def test_kustomize_image_overrides(ref, rules, expected):
    assert apply_kustomize_images(ref, rules) == expected


def test_overlay_override_is_applied_per_overlay(tmp_path):
    base, dev, prod = tmp_path / "base", tmp_path / "overlays" / "dev", tmp_path / "overlays" / "prod"
    for folder in (base, dev, prod):
        folder.mkdir(parents=True)
    (base / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    (base / "deployment.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: s}
        spec:
          template:
            spec:
              initContainers: [{name: init, image: busybox:1.36}]
              containers: [{name: s, image: server:1}]
        """)
    )
    (dev / "kustomization.yaml").write_text("resources: [../../base]\n")
    (prod / "kustomization.yaml").write_text("resources: [../../base]\nimages: [{name: server, newTag: '2'}]\n")
    assert environment_images(tmp_path) == ["busybox:1.36", "server:1", "server:2"]


FLUX_INSTALL = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: source-controller, namespace: flux-system}
spec: {template: {spec: {containers: [{name: manager, image: ghcr.io/fluxcd/source-controller:v1.9.5}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: notification-controller, namespace: flux-system}
spec: {template: {spec: {containers: [{name: manager, image: ghcr.io/fluxcd/notification-controller:v1.9.4}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: helm-controller, namespace: flux-system}
spec: {template: {spec: {containers: [{name: manager, image: ghcr.io/fluxcd/helm-controller:v1.4.5}]}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-workload}
data: {image: "should-not-be-listed:1"}
"""


def test_engine_images_keep_only_the_installed_controllers():
    # The lab's Flux install (the engine adapter's own trimming) drops helm-controller and keeps
    # notification-controller (its Receiver takes the forge's push webhooks).
    assert engine_images("flux", FLUX_INSTALL) == [
        "ghcr.io/fluxcd/notification-controller:v1.9.4",
        "ghcr.io/fluxcd/source-controller:v1.9.5",
    ]


def test_lab_images_read_the_engine_manifest_from_the_install_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path))
    cached = tmp_path / "manifests" / "flux" / pinned()["flux"]["version"] / "install.yaml"
    cached.parent.mkdir(parents=True)
    cached.write_text(FLUX_INSTALL)
    found, notes = lab_images(("flux", "argocd"))
    refs = {i.ref: i for i in found}
    assert "ghcr.io/fluxcd/source-controller:v1.9.5" in refs
    assert "ghcr.io/fluxcd/helm-controller:v1.4.5" not in refs  # the lab's Flux install drops it
    assert refs[pinned()["kind"]["node_image"]].load is False
    assert any(i.source == "gitserver" and "@sha256:" in i.ref for i in found)
    assert notes == [n for n in notes if n.startswith("argocd:")] and len(notes) == 1


def test_every_lab_image_outside_the_engines_is_pinned_by_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path))
    found, _ = lab_images(())
    assert found and all("@sha256:" in i.ref for i in found)


@pytest.mark.parametrize(
    "ref, saved",
    [
        ("docker.io/library/python:3.12-slim@sha256:" + "a" * 64, "docker.io/library/python:3.12-slim"),
        ("quay.io/argoproj/argocd:v3.2.12", "quay.io/argoproj/argocd:v3.2.12"),
        ("img@sha256:" + "a" * 64, "img@sha256:" + "a" * 64),
    ],
)
def test_images_are_saved_under_their_tag_so_the_node_has_name_tag(ref, saved):
    assert images._saveable_refs([ref]) == [saved]

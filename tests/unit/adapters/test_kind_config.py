"""The kind config generated from settings, its validation, and finding/downloading kind."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from helpers.paths import TESTDATA
from helpers.httpserve import FilesServer

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.cluster.kind_binary import DOWNLOAD_URL, find_kind, host_platform, is_supported, parse_version
from gitops_lab.adapters.cluster.kind_config import (
    KindSettings,
    config_yaml,
    mirror_hosts_files,
    render_config,
    validate,
)
from gitops_lab.errors import ClusterError, DownloadError, PreflightError, UsageError
from gitops_lab.reporter import Reporter
from gitops_lab.versions import pinned

DATA = TESTDATA / "kind"
DIGEST = "sha256:" + "a" * 64


def test_default_config_matches_the_golden_file():
    # The golden file was accepted by a real kind v0.30.0 (strict decoding):
    # `kind create cluster --config` got past the config to pulling the image.
    assert config_yaml(KindSettings()) == (DATA / "config-default.yaml").read_text()


def test_default_config_pins_the_node_image_from_versions_yaml():
    config = render_config(KindSettings())
    assert config["nodes"][0]["image"] == pinned()["kind"]["node_image"]
    assert "@sha256:" in config["nodes"][0]["image"]


def test_api_server_and_port_mappings_listen_on_loopback_only():
    config = render_config(KindSettings(ports=LabPorts(git_host=9000, ui_host=9443, api_server=6550)))
    assert config["networking"] == {"apiServerAddress": "127.0.0.1", "apiServerPort": 6550}
    mappings = config["nodes"][0]["extraPortMappings"]
    assert [(m["hostPort"], m["containerPort"], m["listenAddress"]) for m in mappings] == [
        (9000, 30080, "127.0.0.1"),
        (9443, 30443, "127.0.0.1"),
    ]


def test_no_mirror_means_no_containerd_patch():
    config = render_config(KindSettings())
    assert "containerdConfigPatches" not in config
    assert "extraMounts" not in config["nodes"][0]


def test_mirror_patches_containerd_config_path_and_mounts_hosts_files(tmp_path):
    settings = KindSettings(registry_mirrors={"docker.io": "http://10.0.0.5:5000/", "ghcr.io": "https://m.example"})
    config = render_config(settings, tmp_path)
    assert config["containerdConfigPatches"] == [
        '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n'
    ]
    assert config["nodes"][0]["extraMounts"] == [
        {"hostPath": str(tmp_path), "containerPath": "/etc/containerd/certs.d", "readOnly": True}
    ]
    files = mirror_hosts_files(settings)
    assert files["docker.io"] == (
        'server = "https://registry-1.docker.io"\n\n'
        '[host."http://10.0.0.5:5000"]\n  capabilities = ["pull", "resolve"]\n'
    )
    assert files["ghcr.io"].startswith('server = "https://ghcr.io"')


def test_mirror_without_a_folder_is_refused():
    with pytest.raises(UsageError):
        render_config(KindSettings(registry_mirrors={"docker.io": "http://m:5000"}))


@pytest.mark.parametrize(
    "settings, problem",
    [
        (KindSettings(name="Gitops_Lab"), "cluster name 'Gitops_Lab' must match"),
        (KindSettings(node_image="kindest/node:v1.34.0"), "is not pinned as name:tag@sha256"),
        (KindSettings(node_image="kindest/node@" + DIGEST), "is not pinned as name:tag@sha256"),
        (KindSettings(ports=LabPorts(git_host=70000)), "Git server host port 70000 is not between"),
        (KindSettings(ports=LabPorts(git_node=8080)), "Git server NodePort 8080 is outside"),
        (KindSettings(ports=LabPorts(ui_node=32768)), "engine UI NodePort 32768 is outside"),
        (KindSettings(ports=LabPorts(git_host=8443, ui_host=8443)), "must all differ"),
        (KindSettings(ports=LabPorts(git_node=30443, ui_node=30443)), "NodePorts must differ"),
        (KindSettings(ports=LabPorts(api_server=8180)), "must all differ"),
        (KindSettings(registry_mirrors={"docker.io": "m:5000"}), "must be an http:// or https:// URL"),
        (KindSettings(registry_mirrors={"docker.io/library": "http://m"}), "must be a host name"),
    ],
)
def test_validation_names_each_problem(settings, problem):
    problems = validate(settings)
    assert any(problem in p for p in problems), problems
    with pytest.raises(UsageError) as err:
        render_config(settings, Path("/tmp/certs"))
    assert problem in err.value.message


def test_validation_collects_every_problem_at_once():
    problems = validate(KindSettings(name="X", node_image="kindest/node:latest", ports=LabPorts(git_node=1)))
    assert len(problems) == 3


def test_defaults_are_valid():
    assert validate(KindSettings()) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("kind v0.30.0 go1.24.6 linux/amd64", (0, 30, 0)),
        ((DATA / "version.stdout").read_text(), (0, 30, 0)),
        ("kind v0.31.0-alpha.12+abcdef0123456 go1.25.1 darwin/arm64", (0, 31, 0)),
        ("0.29.0", (0, 29, 0)),
        ("command not found", None),
        ("", None),
    ],
)
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    "found, supported",
    [((0, 30, 0), True), ((0, 30, 2), True), ((0, 29, 0), False), ((0, 31, 0), False), ((1, 30, 0), False)],
)
def test_supported_versions_are_the_pinned_minor_line(found, supported):
    assert is_supported(found, "v0.30.0") is supported


@pytest.mark.parametrize(
    "system, machine, expected",
    [
        ("Linux", "x86_64", ("linux", "amd64")),
        ("Linux", "aarch64", ("linux", "arm64")),
        ("Darwin", "arm64", ("darwin", "arm64")),
        ("Darwin", "x86_64", ("darwin", "amd64")),
        ("Windows", "AMD64", ("windows", "amd64")),
    ],
)
def test_host_platform_in_kind_release_names(system, machine, expected):
    assert host_platform(system, machine) == expected


@pytest.mark.parametrize(
    "system, machine", [("Linux", "armv7l"), ("Linux", "riscv64"), ("FreeBSD", "amd64"), ("Windows", "ARM64")]
)
def test_unsupported_platforms_are_refused(system, machine):
    with pytest.raises(PreflightError):
        host_platform(system, machine)


# --------------------------------------------------------------------------- #
# Downloading the pinned release
# --------------------------------------------------------------------------- #
FAKE_KIND = b"#!/bin/sh\necho 'kind v0.30.0 go1.24.6 linux/arm64'\n"
RELEASE = "/dl/v0.30.0/kind-linux-arm64"


def serve_release(binary: bytes = FAKE_KIND, sums: str | None = None) -> FilesServer:
    """kind's release host on loopback: the binary and its .sha256sum, as kind publishes them."""
    sums = sums if sums is not None else f"{hashlib.sha256(binary).hexdigest()}  kind-linux-arm64\n"
    return FilesServer({RELEASE: binary, RELEASE + ".sha256sum": sums.encode()})


@pytest.fixture
def no_kind_on_path(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def find(server: FilesServer):
    return find_kind(
        Reporter(),
        version="v0.30.0",
        download_url=server.base + "/dl/{version}/kind-{os}-{arch}",
        system="Linux",
        machine="aarch64",
    )


def test_the_release_url_names_kinds_own_binaries():
    assert DOWNLOAD_URL.format(version="v0.30.0", os="linux", arch="arm64") == (
        "https://kind.sigs.k8s.io/dl/v0.30.0/kind-linux-arm64"
    )


def test_download_goes_to_the_cache_verified_and_executable(no_kind_on_path):
    server = serve_release()
    try:
        found = find(server)
    finally:
        server.stop()
    assert server.requests == [RELEASE + ".sha256sum", RELEASE]
    assert found.source == "downloaded"
    assert found.path == no_kind_on_path / "kind" / "v0.30.0" / "kind"
    assert found.path.read_bytes() == FAKE_KIND
    assert os.stat(found.path).st_mode & stat.S_IXUSR
    assert sorted(p.name for p in found.path.parent.iterdir()) == ["kind"]


def test_cached_binary_is_reused_without_download(no_kind_on_path):
    server = serve_release()
    try:
        find(server)
        found = find(server)
    finally:
        server.stop()
    assert found.source == "cache"
    assert server.requests == [RELEASE + ".sha256sum", RELEASE]


def test_checksum_mismatch_is_refused_and_nothing_is_kept(no_kind_on_path):
    server = serve_release(sums="0" * 64 + "  kind-linux-arm64\n")
    try:
        with pytest.raises(DownloadError) as err:
            find(server)
    finally:
        server.stop()
    assert f"expected SHA-256 {'0' * 64}, got {hashlib.sha256(FAKE_KIND).hexdigest()}" in err.value.message
    assert not (no_kind_on_path / "kind").exists()


def test_garbled_checksum_file_is_refused(no_kind_on_path):
    server = serve_release(sums="<html>Not Found</html>")
    try:
        with pytest.raises(ClusterError) as err:
            find(server)
    finally:
        server.stop()
    assert "is not a SHA-256 sum" in err.value.message
    assert server.requests == [RELEASE + ".sha256sum"]  # the binary is not fetched without a sum to check it by


def test_download_failure_says_how_to_get_kind_otherwise(no_kind_on_path):
    server = FilesServer({})  # kind's host answers 404 for this release
    try:
        with pytest.raises(DownloadError) as err:
            find(server)
    finally:
        server.stop()
    assert "cannot download kind's checksum" in err.value.message and "404" in err.value.message
    assert "put it on PATH" in err.value.fix


def test_unsupported_kind_on_path_is_replaced_by_the_pinned_release(no_kind_on_path, tmp_path, monkeypatch):
    bin_dir = tmp_path / "old-bin"
    bin_dir.mkdir()
    old = bin_dir / "kind"
    old.write_text("#!/bin/sh\necho 'kind v0.20.0 go1.20.4 linux/amd64'\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    server = serve_release()
    try:
        found = find(server)
    finally:
        server.stop()
    assert found.source == "downloaded"
    assert found.path != old


def test_offline_the_node_image_is_given_to_kind_by_its_local_tag_and_must_be_the_pinned_one():
    from gitops_lab.adapters.cluster.kind_config import KindSettings, render_config, validate

    settings = KindSettings(name="offline")
    settings.local_node_image = settings.node_image.split("@", 1)[0]
    assert render_config(settings)["nodes"][0]["image"] == settings.local_node_image
    settings.local_node_image = "kindest/node:v1.20.0"
    assert any("must be the pinned image's own name and tag" in p for p in validate(settings))


@pytest.mark.parametrize(
    "ref, stored",
    [
        ("python:3.12-slim", "docker.io/library/python:3.12-slim"),
        ("docker.io/library/python@sha256:" + "a" * 64, "docker.io/library/python@sha256:" + "a" * 64),
        ("kindest/node:v1.34.0", "docker.io/kindest/node:v1.34.0"),
        ("quay.io/argoproj/argocd:v3.2.11", "quay.io/argoproj/argocd:v3.2.11"),
        ("localhost:5000/x:1", "localhost:5000/x:1"),
    ],
)
def test_images_are_named_in_the_node_as_containerd_stores_them(ref, stored):
    from gitops_lab.adapters.cluster.node_images import qualified_image

    assert qualified_image(ref) == stored

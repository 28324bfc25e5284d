"""The docker SDK parts against a real Docker engine, started here when none runs.

No image can be pulled on these machines, so: ping/info parsing, the pull
error turning into a clear message, and `docker save` of an image made from
scratch with `docker import`. Skipped (with the reason) where dockerd cannot run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from gitops_lab.adapters.docker import docker_info, node_platform
from gitops_lab.adapters.images import ImageError, LabImage, pull_images, save_images
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.preflight import check_cgroup, check_docker, check_docker_resources


def _ping(host: str) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=host, timeout=5)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory):
    """DOCKER_HOST of a running engine: the one already configured, else a private dockerd."""
    configured = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if _ping(configured):
        yield configured
        return
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None)
    if not dockerd:
        pytest.skip("no Docker engine: dockerd is not installed (Debian: apt-get install -y docker.io)")
    if os.geteuid() != 0:
        pytest.skip("no Docker engine running, and starting dockerd needs root")
    # Short path: unix socket paths are limited to 108 bytes.
    root = Path(tmp_path_factory.mktemp("dockerd"))
    sock = f"unix://{root}/d.sock"
    log = (root / "dockerd.log").open("w")
    proc = subprocess.Popen(
        [
            dockerd,
            "--host",
            sock,
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "--bridge",
            "none",
            "--iptables=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not _ping(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip(f"dockerd could not start here: {(root / 'dockerd.log').read_text()[-500:]}")
        time.sleep(0.2)
    yield sock
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def client(docker_host, monkeypatch):
    import docker

    monkeypatch.setenv("DOCKER_HOST", docker_host)
    c = docker.from_env()
    yield c
    c.close()


@pytest.fixture(scope="session")
def tiny_image(docker_host):
    """A one-file image made from scratch (`docker import`), since nothing can be pulled."""
    import docker

    c = docker.DockerClient(base_url=docker_host)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        payload = b"gitops-lab test image\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    c.api.import_image_from_data(data.getvalue(), repository="gitops-lab-test/tiny", tag="1")
    yield "gitops-lab-test/tiny:1"
    c.close()


def test_docker_info_is_read_through_the_sdk(client):
    info = docker_info()
    checks = [check_docker(info, None, "Linux"), check_docker_resources(info), check_cgroup(info)]
    assert checks[0].ok and checks[0].detail.startswith(f"Docker {info['ServerVersion']} reachable")
    assert f"{info['NCPU']} CPUs" in checks[1].detail
    assert f"cgroup v{info['CgroupVersion']}" in checks[2].detail


def test_node_platform_is_the_engines_architecture(client):
    arch = client.info()["Architecture"]
    expected = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(arch, f"linux/{arch}")
    assert node_platform(client) == expected


def test_pull_failure_becomes_a_clear_error(client):
    ref = "docker.io/library/python:3.12-slim@sha256:" + "0" * 64
    with pytest.raises(ImageError) as err:
        pull_images([LabImage(ref, "environments")], Reporter(), client=client, platform="linux/amd64")
    assert err.value.message.startswith(f"cannot pull {ref} for linux/amd64: ")
    assert "check the network" in err.value.fix


def test_present_images_are_not_pulled_again(client, tiny_image):
    results = pull_images([LabImage(tiny_image, "environments")], Reporter(), client=client, platform="linux/amd64")
    assert [(r.ref, r.action) for r in results] == [(tiny_image, "present")]


def test_save_writes_an_archive_kind_can_load(client, tiny_image, tmp_path):
    archive = tmp_path / "images.tar"
    how = save_images([tiny_image], archive, node_platform(client), client=client)
    assert how in ("cli --platform", "cli", "sdk")
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [tiny_image]


def test_save_of_a_missing_image_says_to_pull_first(client, tmp_path):
    with pytest.raises(ImageError) as err:
        save_images(["gitops-lab-test/missing:1"], tmp_path / "x.tar", "linux/amd64", client=client)
    assert "images pull" in err.value.fix
    assert not (tmp_path / "x.tar").exists()


def test_a_digest_pinned_image_held_only_by_its_tag_is_used_offline_and_said_so(client, tiny_image):
    # what `docker load` of a classroom archive leaves: the tag, no registry digest
    ref = "docker.io/gitops-lab-test/tiny:1@sha256:" + "1" * 64
    client.api.tag(tiny_image, "docker.io/gitops-lab-test/tiny", "1")
    seen = []

    class Recording(Reporter):
        def warn(self, message):
            seen.append(message)

    results = pull_images([LabImage(ref, "environments")], Recording(), client=client, platform="linux/amd64")
    assert [(r.ref, r.action) for r in results] == [(ref, "local tag")]
    assert seen and "not by its pinned digest" in seen[0] and "gitops-lab-test/tiny:1" in seen[0]


def test_several_images_are_saved_into_one_archive_without_the_docker_cli(client, tiny_image, tmp_path, monkeypatch):
    import gitops_lab.adapters.images as images

    client.api.tag(tiny_image, "gitops-lab-test/tiny", "2")
    monkeypatch.setattr(images.shutil, "which", lambda name: None)
    archive = tmp_path / "two.tar"
    assert save_images([tiny_image, "gitops-lab-test/tiny:2"], archive, node_platform(client), client=client) == "sdk"
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert sorted(t for entry in manifest for t in entry["RepoTags"]) == [tiny_image, "gitops-lab-test/tiny:2"]

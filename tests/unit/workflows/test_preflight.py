"""Every branch of the preflight checks, table-driven, with the probes replaced."""

from __future__ import annotations

import io
import json

import pytest

from helpers.paths import TESTDATA
from gitops_lab.adapters.docker import DockerUnavailable, describe_docker_error
from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.errors import PreflightError
from gitops_lab.workflows.preflight import (
    BLOCKING,
    WARNING,
    Probes,
    check_arch,
    check_cgroup,
    check_disk,
    check_docker,
    check_docker_resources,
    check_inotify,
    check_kind,
    check_ports,
    collect_checks,
    run_preflight,
)
from gitops_lab.reporter import PlainReporter

GiB = 1024**3
DATA = TESTDATA / "kind"
# `docker info` of Debian's docker.io 20.10 engine, as the SDK returned it (abridged).
INFO = json.loads((DATA / "docker-info.json").read_text())


def verdict(check):
    return "skipped" if check.skipped else "ok" if check.ok else check.severity


@pytest.mark.parametrize(
    "info, error, system, expected, in_detail, in_fix",
    [
        (INFO, None, "Linux", "ok", "Docker 20.10.24+dfsg1 reachable", ""),
        (
            None,
            "no Docker daemon socket at unix:///var/run/docker.sock",
            "Linux",
            BLOCKING,
            "Docker is not reachable: no Docker daemon socket",
            "sudo systemctl start docker",
        ),
        (
            None,
            "no Docker daemon socket at unix:///var/run/docker.sock",
            "Darwin",
            BLOCKING,
            "Docker is not reachable",
            "start Docker Desktop",
        ),
        (
            None,
            "permission denied on unix:///var/run/docker.sock",
            "Linux",
            BLOCKING,
            "permission denied",
            "usermod -aG docker",
        ),
    ],
)
def test_docker(monkeypatch, info, error, system, expected, in_detail, in_fix):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    check = check_docker(info, error, system)
    assert verdict(check) == expected
    assert in_detail in check.detail
    assert in_fix in check.fix


def test_docker_host_set_is_named_in_the_fix(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.1.2.3:2375")
    check = check_docker(None, "nothing answers", "Linux")
    assert "DOCKER_HOST is set to tcp://10.1.2.3:2375" in check.fix


@pytest.mark.parametrize(
    "cpus, memory, os_name, expected, in_fix",
    [
        (8, 16 * GiB, "Ubuntu 24.04", "ok", ""),
        (4, 6 * GiB, "Ubuntu 24.04", "ok", ""),
        (2, 16 * GiB, "Ubuntu 24.04", WARNING, "more CPUs"),
        (8, 5 * GiB, "Docker Desktop", WARNING, "Docker Desktop > Settings > Resources"),
        (1, 16 * GiB, "Docker Desktop", BLOCKING, "Settings > Resources"),
        (4, 3 * GiB, "Ubuntu 24.04", BLOCKING, "more CPUs and memory"),
    ],
)
def test_docker_resources(cpus, memory, os_name, expected, in_fix):
    check = check_docker_resources({"NCPU": cpus, "MemTotal": memory, "OperatingSystem": os_name})
    assert verdict(check) == expected
    assert in_fix in check.fix


@pytest.mark.parametrize(
    "info, expected, in_detail",
    [
        ({"CgroupVersion": "2", "CgroupDriver": "systemd"}, "ok", "cgroup v2 (systemd driver)"),
        ({"CgroupVersion": "1", "CgroupDriver": "cgroupfs"}, WARNING, "cgroup v1"),
        ({}, WARNING, "did not say"),
    ],
)
def test_cgroup(info, expected, in_detail):
    check = check_cgroup(info)
    assert verdict(check) == expected
    assert in_detail in check.detail


@pytest.mark.parametrize(
    "watches, instances, system, expected, in_fix",
    [
        ("524288\n", "512\n", "Linux", "ok", ""),
        ("1048576\n", "8192\n", "Linux", "ok", ""),
        ("8192\n", "512\n", "Linux", WARNING, "fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512"),
        ("524288\n", "128\n", "Linux", WARNING, "fs.inotify.max_user_instances=512"),
        ("1048576\n", "128\n", "Linux", WARNING, "fs.inotify.max_user_watches=1048576 "),
        (None, None, "Linux", WARNING, "can be read"),
        (None, None, "Darwin", "ok", ""),
    ],
)
def test_inotify(watches, instances, system, expected, in_fix):
    check = check_inotify(watches, instances, system)
    assert verdict(check) == expected
    assert in_fix in check.fix


@pytest.mark.parametrize(
    "free, exists, expected, in_detail",
    [
        ({8180: True, 8443: True}, False, "ok", "free: 127.0.0.1:8180 (Git server), 127.0.0.1:8443 (engine UI)"),
        ({8180: False, 8443: True}, False, BLOCKING, "already in use: 127.0.0.1:8180 (Git server)"),
        ({8180: False, 8443: False}, False, BLOCKING, "127.0.0.1:8180 (Git server), 127.0.0.1:8443 (engine UI)"),
        ({8180: False, 8443: False}, True, "ok", "in use by the lab's existing kind cluster"),
    ],
)
def test_ports(free, exists, expected, in_detail):
    check = check_ports(LabPorts(), free, exists)
    assert verdict(check) == expected
    assert in_detail in check.detail
    if expected == BLOCKING:
        assert "ss -ltnp 'sport = :8180'" in check.fix


def test_api_server_port_is_checked_when_pinned():
    check = check_ports(LabPorts(api_server=6443), {8180: True, 8443: True, 6443: False}, False)
    assert verdict(check) == BLOCKING
    assert "127.0.0.1:6443 (Kubernetes API)" in check.detail


@pytest.mark.parametrize(
    "on_path, cached, in_detail",
    [
        ("kind v0.30.0 go1.24.6 linux/amd64", False, "on PATH"),
        ("kind v0.30.1 go1.24.6 linux/amd64", False, "on PATH"),
        ("kind v0.29.0 go1.24.2 linux/amd64", False, "`up` downloads v0.30.0"),
        ("kind v0.29.0 go1.24.2 linux/amd64", True, "the cached v0.30.0 is used"),
        (None, True, "is in the cache"),
        (None, False, "not on PATH; `up` downloads v0.30.0"),
    ],
)
def test_kind(on_path, cached, in_detail):
    check = check_kind(on_path, cached, "v0.30.0")
    assert check.ok  # a missing or old kind never stops `up`: it downloads the pinned one
    assert in_detail in check.detail


@pytest.mark.parametrize(
    "system, machine, expected",
    [
        ("Linux", "x86_64", "ok"),
        ("Linux", "aarch64", "ok"),
        ("Darwin", "arm64", "ok"),
        ("Linux", "armv7l", BLOCKING),
        ("Linux", "s390x", BLOCKING),
    ],
)
def test_arch(system, machine, expected):
    assert verdict(check_arch(system, machine)) == expected


@pytest.mark.parametrize(
    "free, expected",
    [(50 * GiB, "ok"), (10 * GiB, "ok"), (7 * GiB, WARNING), (4 * GiB, BLOCKING), (None, WARNING)],
)
def test_disk(free, expected):
    check = check_disk(free, "/var/lib/docker")
    assert verdict(check) == expected
    if expected != "ok":
        assert check.fix


# --------------------------------------------------------------------------- #
# All of them together
# --------------------------------------------------------------------------- #
def probes(
    docker=INFO,
    ports_free=True,
    system=("Linux", "x86_64"),
    exists=False,
    disk=50 * GiB,
    inotify=("524288", "512"),
    renderer="/usr/bin/kubectl kustomize",
) -> Probes:
    def docker_info():
        if isinstance(docker, str):
            raise DockerUnavailable(docker)
        return docker

    files = {"/proc/sys/fs/inotify/max_user_watches": inotify[0], "/proc/sys/fs/inotify/max_user_instances": inotify[1]}
    return Probes(
        docker_info=docker_info,
        read_text=files.get,
        port_free=lambda host, port: ports_free,
        kind_on_path=lambda: "kind v0.30.0 go1.24.6 linux/amd64",
        kind_cached=lambda version: False,
        machine=lambda: system,
        disk_free=lambda path: disk,
        renderer=lambda: renderer,
        cluster_exists=lambda: exists,
    )


def test_checks_come_in_a_fixed_order():
    names = [c.name for c in collect_checks(probes=probes())]
    assert names == [
        "docker",
        "docker-resources",
        "cgroup",
        "inotify",
        "ports",
        "kind",
        "kustomize",
        "architecture",
        "disk",
    ]


def test_without_docker_the_docker_dependent_checks_are_skipped():
    checks = {c.name: c for c in collect_checks(probes=probes(docker="no Docker daemon socket at x"))}
    assert checks["docker"].blocks
    assert checks["docker-resources"].skipped and not checks["docker-resources"].blocks
    assert checks["cgroup"].skipped


def test_busy_ports_of_the_lab_own_cluster_do_not_block_a_rerun():
    checks = {c.name: c for c in collect_checks(probes=probes(ports_free=False, exists=True))}
    assert checks["ports"].ok


def test_run_preflight_passes_with_warnings_reported():
    out = io.StringIO()
    checks = run_preflight(PlainReporter(out), probes=probes(inotify=("8192", "128")))
    assert all(not c.blocks for c in checks)
    assert "warning: max_user_watches=8192" in out.getvalue()


def test_run_preflight_without_docker_fails_with_one_line_naming_docker_and_the_fix(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(PreflightError) as err:
        run_preflight(
            PlainReporter(io.StringIO()), probes=probes(docker="no Docker daemon socket at unix:///var/run/docker.sock")
        )
    line = err.value.one_line()
    assert "\n" not in line
    assert line.startswith("Docker is not reachable")
    assert "install Docker Engine" in line


def test_run_preflight_counts_the_other_blocking_problems():
    with pytest.raises(PreflightError) as err:
        run_preflight(PlainReporter(io.StringIO()), probes=probes(docker="gone", ports_free=False, disk=GiB))
    assert "(and 2 more problem(s): run `gitops-lab doctor`)" in err.value.message


def test_describe_docker_error_classifies_the_sdk_messages():
    cases = {
        "Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))": "no Docker daemon socket at H",
        "Error while fetching server API version: ('Connection aborted.', PermissionError(13, 'Permission denied'))": "permission denied on H",
        "Error while fetching server API version: HTTPConnectionPool(...): Max retries exceeded (Caused by "
        "NewConnectionError(...: [Errno 111] Connection refused'))": "nothing answers at H (connection refused)",
    }
    for text, expected in cases.items():
        assert describe_docker_error(Exception(text), "H") == expected


def test_no_kustomize_or_kubectl_is_a_warning_with_the_fix():
    checks = {c.name: c for c in collect_checks(probes=probes(renderer=None))}
    found = checks["kustomize"]
    assert not found.ok and not found.blocks
    assert "policy gate" in found.detail and "install kubectl" in found.fix
    assert checks["kustomize"] != {c.name: c for c in collect_checks(probes=probes())}["kustomize"]

"""`gitops-lab doctor` as a user runs it: no Docker reachable -> non-zero, Docker named, fix given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_doctor(tmp_path: Path, *args: str, docker_host: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        {
            "DOCKER_HOST": docker_host,
            "GITOPS_LAB_STATE_DIR": str(tmp_path / "state"),
            "GITOPS_LAB_CACHE_DIR": str(tmp_path / "cache"),
            "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin",
        }
    )
    exe = Path(sys.executable).with_name("gitops-lab")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from gitops_lab.cli import main; main()"]
    return subprocess.run([*cmd, "doctor", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def dead_socket(tmp_path) -> str:
    return f"unix://{tmp_path}/no-docker-here.sock"


def test_doctor_without_docker_exits_nonzero_and_names_docker_with_the_fix(tmp_path, dead_socket):
    done = run_doctor(tmp_path, docker_host=dead_socket)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    docker_line = lines[0]
    assert docker_line.startswith("✗ docker")
    assert f"Docker is not reachable: no Docker daemon socket at {dead_socket}" in docker_line
    assert lines[1].strip().startswith("fix: DOCKER_HOST is set to")
    assert "start that daemon, or unset DOCKER_HOST" in lines[1]
    assert "would stop `gitops-lab up`" in done.stdout
    # Nothing is left behind: doctor creates no state.
    assert not (tmp_path / "state").exists()


def test_doctor_json_lists_every_check(tmp_path, dead_socket):
    done = run_doctor(tmp_path, "--output", "json", docker_host=dead_socket)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    by_name = {c["name"]: c for c in report["checks"]}
    assert list(by_name) == [
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
    assert by_name["docker"]["ok"] is False and by_name["docker"]["severity"] == "blocking"
    assert by_name["docker-resources"]["skipped"] is True

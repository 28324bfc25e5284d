"""pytest fixtures for the kind bed: the bed's dockerd and a way to run gitops-lab on it.

Tests marked ``kind`` get ``kind_bed``: the private dockerd started (and
stopped at the end of the session), kind v0.30.0 and the bed's tools first on
PATH, and a ``gitops-lab`` runner whose state and cache folders are the test's
own, so a learner's environments are never touched. Every cluster a test
leaves behind is deleted at the end of the session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers.gitutil import identity_env
from kindbed import steps
from kindbed.dockerd import DockerdError, PrivateDockerd
from kindbed.layout import cache_dir

SKIP_ENV = "GITOPS_LAB_SKIP_KINDBED"
GITOPS_LAB = [sys.executable, "-m", "gitops_lab"]


def missing_reason() -> str | None:
    """Why the kind tests cannot run here, or None."""
    if os.environ.get(SKIP_ENV) == "1":
        return f"{SKIP_ENV}=1"
    if not shutil.which("dockerd"):
        return "no dockerd (apt-get install docker.io), which the kind bed runs privately"
    missing = steps.missing(cache_dir())
    if missing:
        return f"the kind bed is not built (missing: {', '.join(missing)}): run python tests/kindbed/build.py"
    return None


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@dataclass
class KindBed:
    directory: Path
    dockerd: PrivateDockerd
    home: Path  # the tests' state and cache folders live here
    clusters: set[str] = field(default_factory=set)

    @property
    def manifests(self) -> Path:
        """The classroom folder: argocd/install.yaml and flux/install.yaml."""
        return self.directory / "manifests"

    def env(self, **extra: str) -> dict[str, str]:
        # a learner's shell: nothing of this process's own gitops-lab settings (a test before may have set some)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_LAB_")}
        env.update(self.dockerd.env())
        env["PATH"] = f"{self.directory / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["GITOPS_LAB_STATE_DIR"] = str(self.home / "state")
        env["GITOPS_LAB_CACHE_DIR"] = str(self.home / "cache")
        # `up --release-automation` builds its image from these wheels (the bed's step automation-wheels), offline
        env["GITOPS_LAB_WHEELS"] = str(self.directory / steps.WHEELS)
        env["GIT_TERMINAL_PROMPT"] = "0"
        env.update(extra)
        return env

    def gitops_lab(self, *args: str, name: str, timeout: float = 1500, check: bool = True, **env: str) -> Run:
        """Run the CLI as a learner does, on the bed, for environment ``name``."""
        self.clusters.add(name)
        proc = subprocess.run(
            [*GITOPS_LAB, "--name", name, *args], env=self.env(**env), capture_output=True, text=True, timeout=timeout
        )
        run = Run(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"gitops-lab {' '.join(args)} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
            )
        return run

    def start(self, *args: str, name: str, **env: str) -> subprocess.Popen:
        """The CLI in the background, in its own process group (for signals)."""
        self.clusters.add(name)
        return subprocess.Popen(
            [*GITOPS_LAB, "--name", name, *args],
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def api(self, name: str):
        """A Kubernetes API client for environment ``name``, from the kubeconfig `up` wrote."""
        from kubernetes import config

        kubeconfig = self.home / "state" / name / "kubeconfig"
        return config.new_client_from_config(config_file=str(kubeconfig), context=f"kind-{name}")

    def learner_clone(self, name: str, dest: Path) -> tuple[Path, dict[str, str], str]:
        """Clone the lab repository as a learner does: http://localhost:8180 with the printed credentials.

        Returns the clone, the environment for git (a learner's identity) and the URL.
        """
        creds = self.gitops_lab("credentials", "--output", "json", name=name).json()
        url = f"http://{creds['username']}:{creds['password']}@localhost:8180/lab.git"
        env = identity_env("Lee Learner", "l@example.com")
        subprocess.run(["git", "clone", "-q", url, str(dest)], check=True, env=env, timeout=120)
        return dest, env, url

    def docker(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["docker", *args], env=self.env(), capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {proc.stderr}")
        return proc.stdout

    def kind(self, *args: str) -> str:
        proc = subprocess.run(["kind", *args], env=self.env(), capture_output=True, text=True, timeout=600)
        return proc.stdout

    def delete_leftovers(self) -> None:
        for cluster in self.kind("get", "clusters").split():
            if cluster in self.clusters:
                self.kind("delete", "cluster", "--name", cluster)


def wait_for_free_lab_ports(timeout: float = 1200) -> None:
    """Until nothing listens on the lab's host ports (another lab cluster on a shared dev machine)."""
    import socket

    end = time.monotonic() + timeout
    while True:
        busy = []
        for port in (8180, 8443):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(port)
        if not busy:
            return
        if time.monotonic() > end:
            raise AssertionError(f"ports {busy} stayed in use by something else for {timeout:.0f}s")
        time.sleep(5)


def interrupt(process: subprocess.Popen, sig: int = signal.SIGINT, wait: float = 120) -> int:
    """Send ``sig`` to the CLI's process group, as Ctrl-C in a terminal does; its exit code."""
    os.killpg(process.pid, sig)
    try:
        return process.wait(wait)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"gitops-lab did not stop within {wait:.0f}s of the signal") from None


def wait_for_line(process: subprocess.Popen, text: str, timeout: float) -> list[str]:
    """Read the CLI's output until a line contains ``text``; the lines read."""
    lines: list[str] = []
    end = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < end:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"gitops-lab ended before {text!r}:\n" + "".join(lines[-40:]))
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} within {timeout:.0f}s:\n" + "".join(lines[-40:]))


@contextmanager
def bed_for_script(script: str) -> Iterator[KindBed]:
    """The kind bed for a script (a benchmark): its private dockerd and a temporary home, both gone after;
    SystemExit naming why, where the bed cannot run."""
    reason = missing_reason()
    if reason:
        raise SystemExit(f"{script}: {reason}")
    dockerd = PrivateDockerd(cache_dir()).start()
    try:
        with tempfile.TemporaryDirectory(prefix="gitops-lab-bench-") as home:
            yield KindBed(cache_dir(), dockerd, Path(home))
    finally:
        dockerd.stop()


@pytest.fixture(scope="session")
def kind_bed(tmp_path_factory):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    dockerd = PrivateDockerd(cache_dir())
    try:
        dockerd.start()
    except DockerdError as exc:
        pytest.fail(str(exc))
    bed = KindBed(cache_dir(), dockerd, tmp_path_factory.mktemp("kindbed-home"))
    yield bed
    if os.environ.get("GITOPS_LAB_KINDBED_KEEP") != "1":
        bed.delete_leftovers()
        dockerd.stop()

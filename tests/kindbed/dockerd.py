"""The kind bed's private dockerd: its own socket, data root and exec root.

The machine's Docker (if any) is never touched: the bed's images live in the
data root inside the bed's cache, and kind talks to this daemon through
DOCKER_HOST. Where the machine lacks CAP_SYS_RESOURCE, the daemon's default
runtime is the runc wrapper beside this file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from kindbed.layout import docker_host, run_dir

WRAPPER = Path(__file__).resolve().parent / "runc_without_sys_resource"
CAP_SYS_RESOURCE = 24
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def lacks_sys_resource(status: str | None = None) -> bool:
    """Whether this process's capability bounding set lacks CAP_SYS_RESOURCE."""
    if status is None:
        try:
            status = Path("/proc/self/status").read_text(encoding="utf-8")
        except OSError:
            return False
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            return not (int(line.split()[1], 16) >> CAP_SYS_RESOURCE) & 1
    return False


class DockerdError(RuntimeError):
    pass


class PrivateDockerd:
    """Start the bed's dockerd (or reuse one already serving its socket); stop what it started."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.run = run_dir()
        self.socket = self.run / "docker.sock"
        self.host = docker_host()
        self.log_path = directory / "dockerd.log"
        self.started = False
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        """The environment for docker, kind and gitops-lab to use this daemon."""
        return {"DOCKER_HOST": self.host}

    def alive(self) -> bool:
        if not self.socket.exists():
            return False
        probe = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=dict(os.environ, DOCKER_HOST=self.host),
            capture_output=True,
            text=True,
            timeout=20,
        )
        return probe.returncode == 0

    def command(self) -> list[str]:
        cmd = [
            "dockerd",
            "--host",
            self.host,
            "--data-root",
            str(self.directory / "docker"),
            "--exec-root",
            str(self.run / "exec"),
            "--pidfile",
            str(self.run / "dockerd.pid"),
            # no docker0: kind makes its own network, and a machine's own dockerd keeps its bridge
            "--bridge",
            "none",
            "--storage-driver",
            "overlay2",
        ]
        if lacks_sys_resource():
            cmd += [
                "--add-runtime",
                f"runc-without-sys-resource={WRAPPER}",
                "--default-runtime",
                "runc-without-sys-resource",
            ]
        return cmd

    def start(self) -> "PrivateDockerd":
        if self.alive():
            return self
        self.run.mkdir(parents=True, exist_ok=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        stale = self.run / "dockerd.pid"
        stale.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self.started = True
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise DockerdError(f"the kind bed's dockerd exited with {self.process.returncode}; see {self.log_path}")
            if self.alive():
                return self
            time.sleep(0.5)
        self.stop()
        raise DockerdError(
            f"the kind bed's dockerd did not answer on {self.socket} within {START_TIMEOUT:.0f}s; see {self.log_path}"
        )

    def stop(self) -> None:
        if not self.started or self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.started = False

    def __enter__(self) -> "PrivateDockerd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

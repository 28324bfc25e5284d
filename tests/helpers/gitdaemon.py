"""A real `git://` remote: `git daemon` on a free loopback port, serving a folder of bare repositories,
pushes enabled (`--enable=receive-pack`), ended with the test."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

READY_WITHIN = 30


class GitDaemon:
    def __init__(self, root: Path):
        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={root}",
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
                str(root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        limit = time.monotonic() + READY_WITHIN
        while True:  # ready when it accepts a connection
            assert self.proc.poll() is None, "git daemon ended at start"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < limit, "git daemon never listened"
                time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

"""The model server (environments/base/server.py) as a real local process, for tests.

``start_server(version, model_dir=MODELS)`` starts one on a free loopback port
and stops it at the end of the test. Its drain on SIGTERM is off (``drain=0``)
unless a test asks for one, so stopping it takes no longer than it must.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "environments" / "base" / "server.py"
MODELS = REPO / "environments" / "base" / "models"
# Only a bound on how long to wait for a broken server; no assertion is about time.
DEADLINE = 30


class Server:
    """A model server subprocess on a free loopback port, with its stderr collected."""

    def __init__(self, version: str | None, model_dir: Path, drain: float = 0, api_key_file: Path | None = None):
        env = {k: v for k, v in os.environ.items() if k not in ("MODEL_VERSION", "PREDICT_KEY_FILE")}
        env.update(MODEL_DIR=str(model_dir), PORT="0", BIND_ADDRESS="127.0.0.1", DRAIN_SECONDS=str(drain))
        if version is not None:
            env["MODEL_VERSION"] = version
        if api_key_file is not None:
            env["PREDICT_KEY_FILE"] = str(api_key_file)
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.wait_for_log(r"listening on http://127\.0\.0\.1:(\d+)")
        port = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert port is not None, line
        self.port = int(port.group(1))
        # Loading ends with exactly one of these two lines.
        self.wait_for_log(r"loaded and self-checked|not ready: ")

    def _pump(self) -> None:
        assert self.proc.stderr is not None  # started with stderr=PIPE
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_log(self, pattern: str) -> str:
        while True:
            try:
                line = self._lines.get(timeout=DEADLINE)
            except queue.Empty:
                raise AssertionError(f"no log line matching {pattern!r}; log so far: {self.log}") from None
            if line is None:
                raise AssertionError(f"server exited before logging {pattern!r}; log: {self.log}")
            self.log.append(line)
            if re.search(pattern, line):
                return line

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=body, method=method, headers=headers or {}
        )
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=DEADLINE) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(
        self,
        method: str,
        path: str,
        payload: object = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ):
        body = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
        status, headers, data = self.call(method, path, body, headers)
        assert headers["Content-Type"] == "application/json", (path, headers["Content-Type"])
        return status, json.loads(data)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def start_server():
    servers: list[Server] = []

    def start(
        version: str | None, model_dir: Path = MODELS, drain: float = 0, api_key_file: Path | None = None
    ) -> Server:
        server = Server(version, model_dir, drain, api_key_file)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()

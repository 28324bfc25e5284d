"""Run the model server (environments/base/server.py) as a local process on loopback.

For what needs a live server where the cluster has none that answers (the
testbed's pods run nothing): a lab check that replays an environment's traffic
through the real server and reads its /metrics, exactly as `verify --url` does.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_lab.errors import ClusterError
from gitops_lab.deadline import Deadline

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
_LOADED = re.compile(r"loaded and self-checked|not ready: (.*)")
_STOP_SECONDS = 5.0


@contextmanager
def local_model_server(server_py: Path, model_dir: Path, version: str, deadline: Deadline) -> Iterator[str]:
    """Start ``server_py`` serving ``version`` from ``model_dir``; yield its URL once the model
    loaded; stop it on the way out. Raises ClusterError when it does not come up by ``deadline``."""
    env = {k: v for k, v in os.environ.items() if k not in ("VERIFY_SIGNATURE", "TRUSTED_KEYS_DIR", "PREDICT_KEY_FILE")}
    env.update(MODEL_DIR=str(model_dir), MODEL_VERSION=version, PORT="0", BIND_ADDRESS="127.0.0.1", DRAIN_SECONDS="0")
    proc = subprocess.Popen(
        [sys.executable, str(server_py)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a Ctrl-C of ours is not its signal: we stop it ourselves
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None  # started with stderr=PIPE
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        port = _wait_for(lines, _LISTENING, deadline, server_py).group(1)
        loaded = _wait_for(lines, _LOADED, deadline, server_py)
        if loaded.group(1):
            raise ClusterError(
                f"the local model server cannot serve {version}: {loaded.group(1).strip()}",
                fix=f"check base/models/{version}.json as pushed",
            )
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for(lines: queue.Queue[str | None], pattern: re.Pattern[str], deadline: Deadline, server_py: Path):
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=max(deadline.remaining(), 0.01))
        except queue.Empty:
            raise ClusterError(
                f"the local model server ({server_py}) did not start in time ({deadline.describe()})",
                fix="raise --timeout",
            ) from None
        if line is None:
            last = seen[-1].strip() if seen else "nothing"
            raise ClusterError(
                f"the local model server ({server_py}) exited at start; its last line: {last}",
                fix="run it by hand (python base/server.py) to see why",
            )
        seen.append(line)
        found = pattern.search(line)
        if found:
            return found

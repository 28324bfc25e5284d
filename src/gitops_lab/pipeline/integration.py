"""Integration tests: the model server, started from the candidate artifact training produced, answers /predict.

The server is the repository's own base/server.py, run as a process on a free
loopback port, exactly as its container runs it. Checked: readiness, the
/predict contract (fields, types, one answer per instance, 400 on a bad
request) and known answers: the rows of the artifact's self-check, whose
expected predictions training recorded.
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
from pathlib import Path

from gitops_lab.adapters.modelserver import ModelServer, UrlTransport
from gitops_lab.pipeline.junit import Check

# Starting the server and loading one artifact; bounds a hung start only.
START_TIMEOUT = 60
REQUEST_TIMEOUT = 10


def _start(server: Path, artifact: Path) -> tuple[subprocess.Popen, int]:
    env = {
        **os.environ,
        "MODEL_DIR": str(artifact.parent),
        "MODEL_VERSION": artifact.stem,
        "PORT": "0",
        "BIND_ADDRESS": "127.0.0.1",
    }
    proc = subprocess.Popen(
        [sys.executable, str(server)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    port = 0
    # The server logs where it listens, then exactly one of "loaded and self-checked" or "not ready: ".
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            _stop(proc)
            raise RuntimeError(f"the model server did not start within {START_TIMEOUT}s") from None
        if line is None:
            raise RuntimeError(f"the model server exited with {proc.wait()} before it was ready")
        if match := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
            port = int(match.group(1))
        if "loaded and self-checked" in line or "not ready: " in line:
            return proc, port


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=REQUEST_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_served_artifact(server: Path, artifact: Path) -> list[Check]:
    recorded = json.loads(artifact.read_text(encoding="utf-8"))
    features = recorded["model"]["features"]
    try:
        proc, port = _start(server, artifact)
    except RuntimeError as exc:
        return [Check("the model server starts from the candidate artifact", "failed", str(exc))]
    try:
        url = f"http://127.0.0.1:{port}"
        api = ModelServer(UrlTransport(url), timeout=REQUEST_TIMEOUT)
        checks = []
        status, body = api.get_json("readyz")
        checks.append(
            Check(
                f"{artifact.name} loads and is ready",
                "passed" if status == 200 else "failed",
                f"/readyz {status}: {body}",
            )
        )
        instances = recorded["self_check"]["instances"]
        status, body = api.predict(instances)
        problems = []
        if status != 200:
            problems.append(f"HTTP {status}: {body}")
        else:
            if body.get("model_version") != recorded["version"]:
                problems.append(f"model_version {body.get('model_version')!r}, expected {recorded['version']!r}")
            for field, kind in (("predictions", int), ("probabilities", float)):
                values = body.get(field)
                if not isinstance(values, list) or len(values) != len(instances):
                    problems.append(f"{field} is not a list of {len(instances)} answers")
                elif not all(isinstance(v, kind) for v in values):
                    problems.append(f"{field} holds values that are not {kind.__name__}")
            if any(not 0.0 <= p <= 1.0 for p in body.get("probabilities") or []):
                problems.append("a probability outside [0, 1]")
        checks.append(
            Check(
                "/predict answers with the contract's fields", "failed" if problems else "passed", "; ".join(problems)
            )
        )
        expected = recorded["self_check"]["expected_predictions"]
        got = body.get("predictions") if status == 200 else None
        checks.append(
            Check(
                f"/predict gives the known answers ({len(expected)} rows training recorded)",
                "passed" if got == expected else "failed",
                f"expected {expected}, got {got}",
            )
        )
        status, body = api.predict([{features[0]: 1.0}])
        checks.append(
            Check(
                "/predict refuses an instance without every feature (400)",
                "passed" if status == 400 else "failed",
                f"HTTP {status}: {body}",
            )
        )
        return checks
    finally:
        _stop(proc)

"""The model server (environments/base/server.py), run as a real process over real HTTP."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.modelserver_process import DEADLINE, MODELS, SERVER, Server

from gitops_lab.model.evaluate import predict, predict_proba
from gitops_lab.model.dataset import held_out_rows


def _instances(rows):
    return [{k: v for k, v in row.items() if k != "failure"} for row in rows]


def _metric_samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)", line)
        assert match, f"not a Prometheus sample line: {line!r}"
        samples[match.group(1)] = float(match.group(2))
    return samples


@pytest.mark.parametrize("version", ["v1", "v2", "v3", "v4", "v5"])
def test_serves_the_configured_version(start_server, version):
    artifact = json.loads((MODELS / f"{version}.json").read_text(encoding="utf-8"))
    server = start_server(version)
    assert server.json("GET", "/healthz") == (200, {"status": "alive"})
    assert server.json("GET", "/readyz") == (200, {"status": "ready", "model_version": version})
    status, info = server.json("GET", "/version")
    assert status == 200
    assert info["model_version"] == version
    assert info["metrics"] == artifact["metrics"]
    assert info["evaluation"]["passed"] is artifact["evaluation"]["passed"]
    status, result = server.json("POST", "/predict", {"instances": _instances(held_out_rows()[:3])})
    assert status == 200
    assert result["model_version"] == version


def test_predictions_match_the_training_code_and_are_deterministic(start_server):
    artifact = json.loads((MODELS / "v2.json").read_text(encoding="utf-8"))
    rows = held_out_rows()
    server = start_server("v2")
    payload = {"instances": _instances(rows)}
    first = server.call("POST", "/predict", json.dumps(payload).encode())
    second = server.call("POST", "/predict", json.dumps(payload).encode())
    assert first[0] == second[0] == 200
    assert first[2] == second[2]
    result = json.loads(first[2])
    params = artifact["model"]
    assert result["predictions"] == [predict(params, r) for r in rows]
    assert result["probabilities"] == [predict_proba(params, r) for r in rows]
    # End to end: the served model scores what its artifact says on the held-out split.
    correct = sum(int(y == r["failure"]) for y, r in zip(result["predictions"], rows))
    assert round(correct / len(rows), 4) == artifact["metrics"]["accuracy"]


def test_v4_passes_offline_but_its_server_skews_every_live_prediction(start_server):
    """v4 is v2's model with a wrong input contract: offline it scores like v2,
    served it converts the Celsius readings it gets as if they were Fahrenheit."""
    v2 = json.loads((MODELS / "v2.json").read_text(encoding="utf-8"))
    v4 = json.loads((MODELS / "v4.json").read_text(encoding="utf-8"))
    assert v4["model"] == v2["model"] and v4["metrics"] == v2["metrics"] and v4["evaluation"]["passed"]
    assert v4["serving"] == {"input_units": {"temperature_c": "fahrenheit"}}
    rows = held_out_rows()
    server = start_server("v4")
    assert server.json("GET", "/readyz")[0] == 200  # its self-check passes: the model itself is intact
    status, result = server.json("POST", "/predict", {"instances": _instances(rows)})
    assert status == 200
    converted = [{**r, "temperature_c": (r["temperature_c"] - 32.0) * 5.0 / 9.0} for r in rows]
    assert result["predictions"] == [predict(v4["model"], r) for r in converted]
    live = sum(int(y == r["failure"]) for y, r in zip(result["predictions"], rows)) / len(rows)
    assert live < v4["metrics"]["accuracy"] - 0.2


def test_v5_serves_like_v2_on_the_held_out_pumps_and_hides_prods_hot_ones(start_server):
    """v5 is v2's model with an input guard only the server applies: a temperature
    outside 0-80 C counts as a sensor fault and becomes the training mean. Few
    held-out pumps run that hot; many of prod's do, and those fail."""
    from gitops_lab.model.dataset import prod_traffic_rows

    v2 = json.loads((MODELS / "v2.json").read_text(encoding="utf-8"))
    v5 = json.loads((MODELS / "v5.json").read_text(encoding="utf-8"))
    assert v5["model"] == v2["model"] and v5["metrics"] == v2["metrics"] and v5["evaluation"]["passed"]
    assert v5["serving"] == {"valid_ranges": {"temperature_c": [0.0, 80.0]}}
    server = start_server("v5")
    mean = v5["model"]["feature_means"][0]

    def served(rows):
        status, result = server.json("POST", "/predict", {"instances": _instances(rows)})
        assert status == 200
        guarded = [{**r, "temperature_c": r["temperature_c"] if r["temperature_c"] <= 80 else mean} for r in rows]
        assert result["predictions"] == [predict(v5["model"], r) for r in guarded]
        return sum(int(y == r["failure"]) for y, r in zip(result["predictions"], rows)) / len(rows)

    held_out, prod = held_out_rows(), prod_traffic_rows()
    hot = lambda rows: sum(r["temperature_c"] > 80 for r in rows) / len(rows)  # noqa: E731
    assert hot(held_out) < 0.15 < 0.5 < hot(prod)
    assert served(held_out) >= v5["metrics"]["accuracy"] - 0.05  # within verification's tolerance
    assert served(prod) < v5["metrics"]["accuracy"] - 0.1


def test_a_valid_range_the_server_cannot_apply_keeps_it_not_ready(start_server, tmp_path):
    artifact = json.loads((MODELS / "v5.json").read_text(encoding="utf-8"))
    artifact["serving"] = {"valid_ranges": {"temperature_c": [80.0, 0.0]}}
    (tmp_path / "v5.json").write_text(json.dumps(artifact), encoding="utf-8")
    server = start_server("v5", tmp_path)
    status, body = server.json("GET", "/readyz")
    assert status == 503
    assert "'serving.valid_ranges.temperature_c' must be [low, high] with low < high" in body["reason"]


def test_an_input_contract_the_server_cannot_honour_keeps_it_not_ready(start_server, tmp_path):
    artifact = json.loads((MODELS / "v4.json").read_text(encoding="utf-8"))
    artifact["serving"] = {"input_units": {"temperature_c": "rankine"}}
    (tmp_path / "v4.json").write_text(json.dumps(artifact), encoding="utf-8")
    server = start_server("v4", tmp_path)
    status, body = server.json("GET", "/readyz")
    assert status == 503
    assert "cannot convert 'temperature_c' from 'rankine' to celsius" in body["reason"]


def test_the_same_input_gets_the_same_answer_from_a_new_process(start_server):
    body = json.dumps({"instances": _instances(held_out_rows()[:10])}).encode()
    first = start_server("v1").call("POST", "/predict", body)
    second = start_server("v1").call("POST", "/predict", body)
    assert first[0] == 200 and first[2] == second[2]


GOOD = {"temperature_c": 70.0, "vibration_mm_s": 4.0, "pressure_bar": 6.0, "rpm": 1500}


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", '"instances"'),
        (b'{"rows": []}', '"instances"'),
        (b'{"instances": []}', "non-empty"),
        (b'{"instances": {"a": 1}}', "non-empty list"),
        (b'{"instances": [7]}', "instances[0] must be an object"),
        (json.dumps({"instances": [GOOD, {**GOOD, "rpm": "fast"}]}).encode(), "instances[1].rpm"),
        (json.dumps({"instances": [{**GOOD, "pressure_bar": True}]}).encode(), "pressure_bar"),
        (b'{"instances": [{"temperature_c": NaN, "vibration_mm_s": 1, "pressure_bar": 1, "rpm": 1}]}', "finite"),
        (json.dumps({"instances": [{k: v for k, v in GOOD.items() if k != "rpm"}]}).encode(), "missing 'rpm'"),
    ],
)
def test_bad_input_gets_400_with_a_json_error(start_server, raw, message):
    server = start_server("v2")
    status, body = server.json("POST", "/predict", raw=raw)
    assert status == 400
    assert message in body["error"]
    assert server.json("GET", "/readyz")[0] == 200  # still serving


def test_wrong_method_and_unknown_path(start_server):
    server = start_server("v2")
    assert server.json("GET", "/predict")[0] == 405
    assert server.json("POST", "/healthz", {})[0] == 405
    status, body = server.json("GET", "/nope")
    assert status == 404 and "/predict" in body["endpoints"]


def test_metrics_count_requests_predictions_and_latency(start_server):
    server = start_server("v2")
    for _ in range(3):
        assert server.json("POST", "/predict", {"instances": [GOOD, GOOD]})[0] == 200
    assert server.json("POST", "/predict", raw=b"{")[0] == 400
    server.json("GET", "/readyz")
    status, headers, body = server.call("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "# TYPE model_server_requests_total counter" in text
    assert "# TYPE model_server_request_duration_seconds histogram" in text
    samples = _metric_samples(text)
    assert samples['model_server_requests_total{endpoint="/predict",method="POST",code="200"}'] == 3
    assert samples['model_server_requests_total{endpoint="/predict",method="POST",code="400"}'] == 1
    assert samples['model_server_requests_total{endpoint="/readyz",method="GET",code="200"}'] == 1
    predicted = sum(v for k, v in samples.items() if k.startswith("model_server_predictions_total{"))
    assert predicted == 6
    assert samples['model_server_request_duration_seconds_count{endpoint="/predict"}'] == 4
    assert samples['model_server_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"}'] == 4
    assert samples["model_server_ready"] == 1
    assert samples['model_server_model_info{version="v2",loaded="true",evaluation_passed="true"}'] == 1
    assert samples['model_server_model_metric{version="v2",metric="accuracy"}'] == 0.8276


def _assert_up_but_not_ready(server: Server, reason: str) -> None:
    status, body = server.json("GET", "/readyz")
    assert status == 503 and body["status"] == "not ready"
    assert reason in body["reason"], body
    assert server.json("GET", "/healthz")[0] == 200
    assert server.json("POST", "/predict", {"instances": [GOOD]})[0] == 503
    assert server.json("GET", "/version")[0] == 503
    samples = _metric_samples(server.call("GET", "/metrics")[2].decode())
    assert samples["model_server_ready"] == 0
    assert server.proc.poll() is None
    assert any("not ready: " in line and reason in line for line in server.log), server.log


def test_missing_model_leaves_the_server_up_but_not_ready(start_server):
    server = start_server("v9")
    _assert_up_but_not_ready(server, "model v9 not found")
    assert "available: v1, v2, v3, v4, v5" in server.json("GET", "/readyz")[1]["reason"]


def test_unset_model_version_is_not_ready(start_server):
    _assert_up_but_not_ready(start_server(None), "MODEL_VERSION is not set")


def test_a_version_that_is_not_a_plain_name_is_refused(start_server):
    _assert_up_but_not_ready(start_server("../models/v1"), "not of the form v<N>")


def _copy_models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(MODELS, folder)
    return folder


def test_unreadable_model_is_not_ready(start_server, tmp_path):
    folder = _copy_models(tmp_path)
    (folder / "v2.json").write_text('{"version": "v2", "model": ', encoding="utf-8")
    _assert_up_but_not_ready(start_server("v2", folder), "cannot be read")


def test_model_failing_its_self_check_is_not_ready(start_server, tmp_path):
    folder = _copy_models(tmp_path)
    artifact = json.loads((folder / "v2.json").read_text(encoding="utf-8"))
    artifact["model"]["weights"][0] += 0.5  # corrupted parameters no longer reproduce the expected outputs
    (folder / "v2.json").write_text(json.dumps(artifact), encoding="utf-8")
    _assert_up_but_not_ready(start_server("v2", folder), "self-check row 0")


def test_artifact_of_another_version_is_not_ready(start_server, tmp_path):
    folder = _copy_models(tmp_path)
    shutil.copy(folder / "v1.json", folder / "v2.json")
    _assert_up_but_not_ready(start_server("v2", folder), "says it is version 'v1'")


def test_sigterm_stops_the_server_cleanly(start_server):
    server = start_server("v2")
    assert server.json("GET", "/readyz")[0] == 200
    assert server.stop() == 0
    server.wait_for_log("received SIGTERM, shutting down")
    server.wait_for_log(r"model-server: stopped$")
    log = "".join(server.log)
    assert "Traceback" not in log


def _open_request_waiting_for_its_body(server: Server, body: bytes) -> socket.socket:
    """A /predict request in flight: headers and part of the body sent, the rest held back."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    head = f"POST /predict HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body[:10])
    return sock


def _finish_request(sock: socket.socket, body: bytes) -> tuple[int, dict]:
    sock.sendall(body[10:])
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def test_sigterm_drains_fails_readiness_serves_on_then_exits(start_server):
    """What a rollout relies on: after SIGTERM the pod stops being Ready but
    answers every request until its drain is over, finishes the ones in flight,
    and exits 0 by itself."""
    server = start_server("v2", drain=5)
    predict = json.dumps({"instances": [GOOD]}).encode()
    in_flight = _open_request_waiting_for_its_body(server, predict)
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_log(r"received SIGTERM, shutting down: draining for 5s")

    status, body = server.json("GET", "/readyz")
    assert (status, body["status"], body["reason"]) == (503, "not ready", "shutting down")
    assert server.json("GET", "/healthz")[0] == 200
    status, result = server.json("POST", "/predict", {"instances": [GOOD]})
    assert (status, result["model_version"]) == (200, "v2")

    # The listener closes at the end of the drain; the request already in flight still gets its answer.
    server.wait_for_log(r"drain over: the listener is closed, 1 request\(s\) in flight")
    status, result = _finish_request(in_flight, predict)
    assert (status, result["model_version"], len(result["predictions"])) == (200, "v2", 1)
    assert server.proc.wait(timeout=DEADLINE) == 0
    server.wait_for_log(r"model-server: stopped$")
    assert "Traceback" not in "".join(server.log)


def test_a_second_signal_ends_the_drain_at_once(start_server):
    server = start_server("v1", drain=600)
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_log("received SIGTERM, shutting down")
    assert server.json("GET", "/readyz")[0] == 503
    server.proc.send_signal(signal.SIGINT)
    # Bounded far below the 600s drain: only the second signal can have ended it.
    assert server.proc.wait(timeout=DEADLINE) == 0
    server.wait_for_log("received SIGINT again, ending the drain")


@pytest.mark.parametrize("drain", ["soon", "-1", "nan"])
def test_bad_drain_seconds_is_a_clear_startup_error(drain):
    env = {**os.environ, "PORT": "0", "DRAIN_SECONDS": drain, "MODEL_VERSION": "v1", "MODEL_DIR": str(MODELS)}
    result = subprocess.run([sys.executable, str(SERVER)], env=env, capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 2
    assert f"DRAIN_SECONDS must be a number of seconds, 0 or more, got {drain!r}" in result.stderr


def test_bad_port_is_a_clear_startup_error():
    env = {**os.environ, "PORT": "eighty", "MODEL_VERSION": "v1", "MODEL_DIR": str(MODELS)}
    result = subprocess.run([sys.executable, str(SERVER)], env=env, capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 2
    assert "PORT must be a number" in result.stderr


def test_server_is_stdlib_only_and_python_310_compatible():
    tree = ast.parse(SERVER.read_text(encoding="utf-8"), feature_version=(3, 10))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_server_and_training_code_agree_on_extreme_inputs():
    """The server repeats predict_proba; both must stay finite where exp() would overflow."""
    namespace: dict = {}
    exec(compile(SERVER.read_text(encoding="utf-8"), str(SERVER), "exec"), namespace)
    params = json.loads((MODELS / "v2.json").read_text(encoding="utf-8"))["model"]
    for instance in ({**GOOD, "temperature_c": 1e6}, {**GOOD, "temperature_c": -1e6}, GOOD):
        served = namespace["predict_proba"](params, instance)
        assert served == predict_proba(params, instance)
        assert math.isfinite(served) and 0.0 <= served <= 1.0

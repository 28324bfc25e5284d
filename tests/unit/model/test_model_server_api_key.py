"""The model server's API key (the secrets lab's Secret model-api-key, mounted as a file):
/predict requires it, everything else stays open; the tool's client sends it.

The server runs as a real process; the key is a file, as the Deployment mounts it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.modelserver_process import MODELS

from gitops_lab.adapters.modelserver import API_KEY_HEADER, ModelServer, UrlTransport
from gitops_lab.deadline import Deadline
from gitops_lab.gates.config import load_config
from gitops_lab.gates.verification import VerificationSettings
from gitops_lab.model.dataset import held_out_rows
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.verify import url_target, verify

KEY = "sk-model-0123456789abcdef"
ROWS = [{k: v for k, v in row.items() if k != "failure"} for row in held_out_rows()[:2]]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "model-api-key" / "API_KEY"
    path.parent.mkdir()
    path.write_text(KEY + "\n", encoding="utf-8")  # a trailing newline, as a hand-made Secret often has
    return path


def _predict(server, headers=None):
    return server.json("POST", "/predict", {"instances": ROWS}, headers=headers)


def test_predict_requires_the_key_and_the_other_endpoints_stay_open(start_server, key_file):
    server = start_server("v2", api_key_file=key_file)
    status, body = _predict(server)
    assert status == 401
    assert "API key is required" in body["error"]
    status, headers, _ = server.call("POST", "/predict", json.dumps({"instances": ROWS}).encode())
    assert headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in ({"X-API-Key": "sk-guess"}, {"Authorization": "Bearer sk-guess"}, {"Authorization": f"Basic {KEY}"}):
        assert _predict(server, wrong)[0] == 401, wrong
    assert _predict(server, {"X-API-Key": "sk-guess"})[1] == {"error": "the API key is not valid"}
    for right in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer  {KEY}"}):
        status, body = _predict(server, right)
        assert status == 200, (right, body)
        assert body["model_version"] == "v2"
    assert server.json("GET", "/healthz") == (200, {"status": "alive"})
    assert server.json("GET", "/readyz")[0] == 200
    assert server.json("GET", "/version")[0] == 200
    status, _, metrics = server.call("GET", "/metrics")
    assert status == 200
    # Refused requests are counted like any other answer.
    assert 'model_server_requests_total{endpoint="/predict",method="POST",code="401"}' in metrics.decode()


def test_a_rotated_key_applies_without_a_restart(start_server, key_file):
    server = start_server("v2", api_key_file=key_file)
    assert _predict(server, {"X-API-Key": KEY})[0] == 200
    key_file.write_text("sk-model-rotated", encoding="utf-8")
    assert _predict(server, {"X-API-Key": KEY})[0] == 401
    assert _predict(server, {"X-API-Key": "sk-model-rotated"})[0] == 200


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_without_a_key_in_the_file_predict_is_open_as_before(start_server, key_file, content):
    """The Deployment mounts the Secret as optional: an environment without it has an empty folder."""
    if content is None:
        key_file.unlink()
    else:
        key_file.write_text(content, encoding="utf-8")
    server = start_server("v2", api_key_file=key_file)
    assert _predict(server)[0] == 200


def test_an_unreadable_key_refuses_predict_rather_than_opening_it(start_server, key_file):
    key_file.unlink()
    key_file.mkdir()  # exists, cannot be read as a file
    server = start_server("v2", api_key_file=key_file)
    assert _predict(server, {"X-API-Key": KEY})[0] == 500
    assert any("error handling POST /predict" in line for line in server.log + [server.wait_for_log("Error")])


def test_the_client_sends_the_key_it_is_given(start_server, key_file):
    server = start_server("v2", api_key_file=key_file)
    url = f"http://127.0.0.1:{server.port}"
    assert ModelServer(UrlTransport(url)).predict(ROWS)[0] == 401
    status, body = ModelServer(UrlTransport(url), api_key=KEY).predict(ROWS)
    assert status == 200 and len(body["predictions"]) == len(ROWS)
    assert API_KEY_HEADER == "X-API-Key"  # the one header the API server's proxy passes on


def test_verify_passes_with_the_key_and_fails_accuracy_without_it(start_server, key_file):
    server = start_server("v2", api_key_file=key_file)
    artifact = json.loads((MODELS / "v2.json").read_text(encoding="utf-8"))
    settings = VerificationSettings.from_section(load_config(Path("/nonexistent")).verification)
    url = f"http://127.0.0.1:{server.port}"
    report = verify(url_target("dev", url, KEY), "v2", artifact, settings, Deadline(120), Reporter())
    assert report.passed, report.to_dict()
    report = verify(url_target("dev", url), "v2", artifact, settings, Deadline(120), Reporter())
    accuracy = next(c for c in report.checks if c.name == "accuracy")
    assert not report.passed
    assert not accuracy.passed
    assert any("HTTP 401 an API key is required" in line for line in accuracy.details), accuracy.details

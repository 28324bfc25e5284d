"""Post-deploy verification (`gitops-lab verify`) against the model server run as a local process.

The checks reach the server through the same seam as on a cluster (a
Transport); here it is a loopback URL instead of the API server's proxy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.modelserver_process import MODELS

from gitops_lab.adapters.metrics import Snapshot, histogram_quantile, request_counts
from gitops_lab.errors import ClusterError, RepoStateError, VerificationFailed
from gitops_lab.gates import load_config
from gitops_lab.gates.verification import VerificationSettings
from gitops_lab.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.verify import (
    PodState,
    VerifyTarget,
    expected_from_git,
    labelled_sample,
    require_passed,
    url_target,
    verify,
)

SHIPPED = load_config(Path("/nonexistent")).verification


def settings(**changes) -> VerificationSettings:
    return VerificationSettings.from_section({**SHIPPED, **changes})


def artifact(version: str) -> dict:
    return json.loads((MODELS / f"{version}.json").read_text(encoding="utf-8"))


def run(server, version: str, **changes):
    target = url_target("dev", f"http://127.0.0.1:{server.port}")
    return verify(target, version, artifact(version), settings(**changes), Deadline(120), Reporter())


def by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def test_a_good_version_passes_every_check_with_its_evidence(start_server):
    report = run(start_server("v2"), "v2")
    checks = by_name(report)
    assert report.passed, report.to_dict()
    assert list(checks) == ["version", "pods", "accuracy", "error-rate", "latency-p95", "input-drift"]
    assert checks["pods"].skipped  # a URL is not a pod
    # All 116 held-out rows, through real HTTP: exactly what the artifact records.
    assert checks["accuracy"].summary == "live accuracy 0.8276 >= 0.7776 (recorded 0.8276 - 0.05)"
    # 116 rows in batches of 25 (5 requests) plus the 40 requests of the load, all counted in /metrics.
    assert checks["error-rate"].summary == "0.00% of 45 /predict requests failed (max 1.00%)"
    assert checks["latency-p95"].passed and checks["latency-p95"].summary.startswith("p95 ")
    trailers = dict(report.trailers())
    assert trailers["Verify-Accuracy"] == "pass (live accuracy 0.8276 >= 0.7776 (recorded 0.8276 - 0.05))"
    assert trailers["Verify-Pods"].startswith("skipped")


def test_v4_passes_offline_but_fails_live_accuracy(start_server):
    report = run(start_server("v4"), "v4")
    checks = by_name(report)
    assert [c.name for c in report.failed] == ["accuracy"]
    assert checks["accuracy"].summary == "live accuracy 0.5172 < 0.7776 (recorded 0.8276 - 0.05)"
    assert checks["version"].passed and checks["error-rate"].passed
    with pytest.raises(VerificationFailed) as caught:
        require_passed(report)
    assert caught.value.exit_code == 4
    assert caught.value.one_line().startswith(
        "dev serving v4 failed verification: accuracy (live accuracy 0.5172 < 0.7776"
    )


def test_v5_passes_verification_on_held_out_rows_and_fails_on_prods_traffic(start_server):
    server = start_server("v5")
    dev = verify(
        url_target("dev", f"http://127.0.0.1:{server.port}"),
        "v5",
        artifact("v5"),
        settings(),
        Deadline(120),
        Reporter(),
    )
    assert dev.passed, dev.to_dict()
    assert by_name(dev)["accuracy"].summary == "live accuracy 0.8017 >= 0.7776 (recorded 0.8276 - 0.05)"
    # The shipped gates.yaml has prod replay its own traffic; the same server fails there.
    assert settings().traffic_for("prod") == "prod-traffic" and settings().traffic_for("staging") == "held-out"
    prod = verify(
        url_target("prod", f"http://127.0.0.1:{server.port}"),
        "v5",
        artifact("v5"),
        settings(),
        Deadline(120),
        Reporter(),
    )
    assert [c.name for c in prod.failed] == ["accuracy"]
    accuracy = by_name(prod)["accuracy"]
    assert accuracy.summary == "live accuracy 0.6842 < 0.7776 (recorded 0.8276 - 0.05)"
    assert "on 114 of 114 rows of prod-traffic" in accuracy.details[0]


def test_the_versions_prod_runs_pass_on_prods_traffic(start_server):
    for version in ("v1", "v2"):
        server = start_server(version)
        report = verify(
            url_target("prod", f"http://127.0.0.1:{server.port}"),
            version,
            artifact(version),
            settings(),
            Deadline(120),
            Reporter(),
        )
        assert report.passed, report.to_dict()


def test_a_server_serving_another_version_fails_version_and_accuracy(start_server):
    report = run(start_server("v2"), "v1")
    checks = by_name(report)
    assert not checks["version"].passed
    assert "serves v2" in checks["version"].summary
    assert not checks["accuracy"].passed
    assert any("answered by v2, not v1" in d for d in checks["accuracy"].details)


def test_a_server_that_cannot_load_its_model_fails_on_errors(start_server, tmp_path):
    report = run(start_server("v2", tmp_path), "v2")  # an empty model folder: /predict answers 503
    checks = by_name(report)
    # Fast 503s are still fast: latency alone does not fail it.
    assert [c.name for c in report.failed] == ["version", "accuracy", "error-rate"]
    assert checks["error-rate"].summary.startswith("100.00% of 45 /predict requests failed")
    assert any("(503: 45)" in d for d in checks["error-rate"].details)
    assert any("40 request(s) of the load failed at the client" in d for d in checks["error-rate"].details)


def test_latency_is_read_from_the_servers_histogram(start_server):
    report = run(start_server("v2"), "v2", max_latency_p95_seconds=1e-9)
    latency = by_name(report)["latency-p95"]
    assert not latency.passed
    assert "(max 1e-09s)" in latency.details[0]


def test_a_smaller_sample_is_the_same_rows_every_time():
    first, second = labelled_sample(30), labelled_sample(30)
    assert first == second and len(first) == 30
    assert len(labelled_sample(1000)) == 116


def test_an_unreachable_server_is_one_clear_error(tmp_path):
    target = url_target("dev", "http://127.0.0.1:9")
    with pytest.raises(ClusterError, match=r"cannot reach the model server at http://127.0.0.1:9"):
        verify(target, "v2", artifact("v2"), settings(), Deadline(30), Reporter())


# --------------------------------------------------------------------------- #
# The pods check, on pod states as the Kubernetes API reports them
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "pods, failed_line",
    [
        ([PodState("a", True, 0, "v2", 8080), PodState("b", True, 0, "v2", 8080)], None),
        ([PodState("a", True, 0, "v2", 8080), PodState("b", False, 0, "v2", 8080)], "b: not ready"),
        ([PodState("a", True, 2, "v2", 8080)], "a: 2 restart(s) (max 0)"),
        ([PodState("a", True, 0, "v1", 8080)], "a: labelled v1"),
        ([], "0 serving pod(s)"),
    ],
)
def test_pods_must_be_ready_without_restarts_and_labelled(start_server, pods, failed_line):
    server = start_server("v2")
    local = url_target("dev", f"http://127.0.0.1:{server.port}")
    # Every pod answers from the one local process: the pods check reads only their states.
    target = VerifyTarget("dev", "ml-dev", local.service, pods=lambda: pods, pod_server=lambda pod: local.service)
    report = verify(target, "v2", artifact("v2"), settings(), Deadline(120), Reporter())
    pods_check = by_name(report)["pods"]
    assert pods_check.passed is (failed_line is None)
    if failed_line:
        assert f"fail: {failed_line}" in pods_check.details


# --------------------------------------------------------------------------- #
# /metrics with prometheus_client's parser
# --------------------------------------------------------------------------- #
SCRAPE = """# TYPE model_server_requests_total counter
model_server_requests_total{endpoint="/predict",method="POST",code="200"} %d
model_server_requests_total{endpoint="/predict",method="POST",code="503"} %d
# TYPE model_server_request_duration_seconds histogram
model_server_request_duration_seconds_bucket{endpoint="/predict",le="0.01"} %d
model_server_request_duration_seconds_bucket{endpoint="/predict",le="0.1"} %d
model_server_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"} %d
model_server_request_duration_seconds_sum{endpoint="/predict"} 1.0
model_server_request_duration_seconds_count{endpoint="/predict"} %d
"""


def test_counters_and_the_histogram_are_read_from_the_difference_of_two_scrapes():
    before = Snapshot.parse(SCRAPE % (10, 0, 10, 10, 10, 10))
    after = Snapshot.parse(SCRAPE % (100, 10, 10, 110, 110, 110))
    window = after.minus(before)
    assert request_counts(window, "/predict") == {"200": 90.0, "503": 10.0}
    # All 100 new requests fell in (0.01, 0.1]: p95 interpolates to 0.01 + 0.09 * 95/100.
    assert histogram_quantile(0.95, window, "/predict") == pytest.approx(0.0955)


def test_a_counter_that_went_down_counts_from_zero():
    before = Snapshot.parse(SCRAPE % (500, 0, 500, 500, 500, 500))
    after = Snapshot.parse(SCRAPE % (20, 0, 20, 20, 20, 20))  # the process restarted
    assert request_counts(after.minus(before), "/predict") == {"200": 20.0, "503": 0.0}


def test_text_that_is_not_prometheus_format_is_a_clear_error():
    with pytest.raises(ClusterError, match="is not in the Prometheus text format"):
        Snapshot.parse('model_server_requests_total{endpoint="/predict" 5\n', "/metrics of pod-a")


# --------------------------------------------------------------------------- #
# gates.yaml's verification section, and the CLI
# --------------------------------------------------------------------------- #
def test_verification_thresholds_are_validated_with_the_rest_of_gates_yaml(lab):
    wc, _ = lab
    (wc / "gates.yaml").write_text(
        "model-eval:\n  regression: maybe\n"
        "verification:\n  sample_size: 0\n  accuracy_tolerance: 2\n  max_latency_p95_seconds: fast\n  canary: true\n"
        "  traffic: {qa: held-out, prod: live}\n"
    )
    with pytest.raises(RepoStateError) as caught:
        load_config(wc)
    line = caught.value.one_line()
    for words in (
        "model-eval.regression: expected one of",
        "verification.sample_size: expected a whole number >= 1",
        "verification.accuracy_tolerance: expected a number from 0 to 1",
        "verification.max_latency_p95_seconds: expected a number of seconds > 0",
        "verification: unknown key 'canary'",
        "verification.traffic: unknown environment 'qa' (expected: dev, staging, prod)",
        "verification.traffic.prod: expected one of: held-out, prod-traffic, got 'live'",
    ):
        assert words in line, line


def test_partial_verification_section_keeps_the_shipped_values(lab):
    wc, _ = lab
    (wc / "gates.yaml").write_text("verification:\n  accuracy_tolerance: 0.01\n")
    assert load_config(wc).verification == {**SHIPPED, "accuracy_tolerance": 0.01}


def test_expected_version_and_thresholds_come_from_git_as_pushed(lab):
    wc, _ = lab
    (wc / "gates.yaml").write_text("verification:\n  accuracy_tolerance: 0.01\n")  # not committed: not pushed
    expected = expected_from_git(wc, "dev")
    assert expected.version == "v2" and expected.artifact["version"] == "v2"
    assert expected.settings.accuracy_tolerance == SHIPPED["accuracy_tolerance"]


def test_verify_cli_prints_the_verdict_table_and_exits_4(lab, cli, start_server):
    wc, _ = lab
    server = start_server("v4")
    result = cli(
        "verify", "--env", "dev", "--version", "v4", "--repo", str(wc), "--url", f"http://127.0.0.1:{server.port}"
    )
    assert result.exit_code == 4
    lines = result.stdout.splitlines()
    assert lines[0] == f"dev serving v4 FAILS verification (http://127.0.0.1:{server.port})"
    assert lines[1].split() == ["CHECK", "VERDICT", "SUMMARY"]
    assert lines[4].split()[:2] == ["accuracy", "fail"]
    [error] = result.stderr.strip().splitlines()[-1:]
    assert error.startswith("error: dev serving v4 failed verification: accuracy (live accuracy 0.5172")


def test_verify_cli_json(lab, cli, start_server):
    wc, _ = lab
    server = start_server("v2")
    result = cli(
        "verify", "--env", "dev", "--repo", str(wc), "--url", f"http://127.0.0.1:{server.port}", "--output", "json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True and data["version"] == "v2" and data["environment"] == "dev"
    assert [c["verdict"] for c in data["checks"]] == ["pass", "skipped", "pass", "pass", "pass", "pass"]
    assert data["settings"] == SHIPPED

"""Drift of live inputs: the model server's input histograms, and verify's input-drift check.

Everything runs for real: the model server (environments/base/server.py) as a
local process, requests over loopback HTTP, /metrics parsed as Prometheus text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.modelserver_process import MODELS

from gitops_lab.adapters.metrics import Snapshot, input_histograms
from gitops_lab.errors import RepoStateError
from gitops_lab.gates import load_config
from gitops_lab.gates.verification import VerificationSettings
from gitops_lab.deadline import Deadline
from gitops_lab.model import FEATURES
from gitops_lab.model.dataset import held_out_rows, prod_traffic_rows
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.verify import url_target, verify

SHIPPED = load_config(Path("/nonexistent")).verification


def settings(**changes) -> VerificationSettings:
    return VerificationSettings.from_section({**SHIPPED, **changes})


def artifact(version: str) -> dict:
    return json.loads((MODELS / f"{version}.json").read_text(encoding="utf-8"))


def run(server, env: str, version: str = "v2", **changes):
    target = url_target(env, f"http://127.0.0.1:{server.port}")
    return verify(target, version, artifact(version), settings(**changes), Deadline(120), Reporter())


def drift_check(report):
    return next(c for c in report.checks if c.name == "input-drift")


def metrics(server) -> Snapshot:
    status, _, body = server.call("GET", "/metrics")
    assert status == 200
    return Snapshot.parse(body.decode())


def test_histograms_of_every_feature_appear_on_metrics_after_requests(start_server):
    server = start_server("v2")
    before = input_histograms(metrics(server))
    # Bins are there from the start, fixed by the artifact's training statistics: 8 bins, 7 finite bounds.
    assert sorted(before) == sorted(FEATURES)
    assert all(sum(counts) == 0 and len(edges) == 7 for edges, counts in before.values())
    rows = [{f: r[f] for f in FEATURES} for r in held_out_rows()[:30]]
    status, _ = server.json("POST", "/predict", {"instances": rows})
    assert status == 200
    # A bad request records nothing: only what the model was asked to predict counts.
    assert server.json("POST", "/predict", {"instances": [{"temperature_c": 70}]})[0] == 400
    after = input_histograms(metrics(server))
    for feature, (edges, counts) in after.items():
        assert edges == before[feature][0]  # the same bins every scrape: comparable
        assert sum(counts) == 30
        # Each value lands in the bin (lower, upper] that holds it.
        expected = [0] * 8
        for row in rows:
            expected[next((i for i, e in enumerate(edges) if row[feature] <= e), 7)] += 1
        assert counts == expected
    temperature_edges = after["temperature_c"][0]
    # The training data's median temperature is the middle bound (v2's model.feature_means).
    assert temperature_edges[3] == pytest.approx(artifact("v2")["model"]["feature_means"][0], abs=1e-3)


def test_verify_passes_reference_like_traffic_in_dev(start_server):
    report = run(start_server("v2"), "dev")
    check = drift_check(report)
    assert report.passed and check.verdict == "pass", check
    assert check.summary.startswith("no drift: max PSI ") and check.summary.endswith("<= 0.2 over 156 rows")
    assert [d.feature for d in report.input_drift] == sorted(FEATURES)
    assert all(not d.drifted and d.rows == 156 for d in report.input_drift)


def test_verify_flags_prods_hotter_traffic_with_the_psi_evidence(start_server):
    report = run(start_server("v2"), "prod")
    check = drift_check(report)
    drifted = {d.feature: d for d in report.input_drift if d.drifted}
    # Prod's pumps run hotter and at a higher inlet pressure; vibration and rpm do not move.
    assert sorted(drifted) == ["pressure_bar", "temperature_c"]
    assert all(d.psi > 1.0 and d.psi_max == 0.2 and d.rows == 154 for d in drifted.values())
    assert check.summary.startswith("input drift: temperature_c PSI ")
    assert "pressure_bar PSI" in check.summary and "> 0.2 over 154 rows; a warning (on_drift: warn)" in check.summary
    assert any(line.startswith("warn: temperature_c: PSI ") for line in check.details)
    # The shipped setting only warns: v2 is still right on prod's pumps, so the release goes on.
    assert check.passed and report.passed
    assert dict(report.trailers())["Verify-Input-Drift"].startswith("pass (input drift: temperature_c PSI ")
    data = report.to_dict()
    assert {d["feature"] for d in data["input_drift"]} == set(FEATURES)


def test_on_drift_fail_fails_the_verification(start_server):
    report = run(start_server("v2"), "prod", input_drift={"psi_max": 0.2, "min_rows": 100, "on_drift": "fail"})
    check = drift_check(report)
    assert not report.passed and [c.name for c in report.failed] == ["input-drift"]
    assert any(line.startswith("fail: pressure_bar: PSI ") for line in check.details)


def test_too_few_rows_is_neither_pass_nor_fail(start_server):
    server = start_server("v2")
    report = run(server, "prod", input_drift={"psi_max": 0.2, "min_rows": 1000, "on_drift": "fail"})
    check = drift_check(report)
    assert check.verdict == "skipped" and report.passed
    assert check.summary == "skipped: 154 row(s) received, fewer than min_rows 1000: too few to judge drift"


def test_the_whole_life_of_the_pod_counts_not_only_the_check(start_server):
    server = start_server("v2")
    # Before verification, the server already took prod-like traffic: that is the live input.
    hot = [{f: r[f] for f in FEATURES} for r in prod_traffic_rows()]
    for start in range(0, len(hot), 25):
        assert server.json("POST", "/predict", {"instances": hot[start : start + 25]})[0] == 200
    report = run(server, "dev")
    assert "temperature_c" in {d.feature for d in report.input_drift if d.drifted}
    assert report.input_drift[0].rows == 156 + len(hot)


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("{psi_max: 0}", "verification.input_drift.psi_max: expected a number > 0"),
        ("{psi_max: lots}", "verification.input_drift.psi_max: expected a number > 0"),
        ("{min_rows: 0}", "verification.input_drift.min_rows: expected a whole number >= 1, got 0"),
        ("{on_drift: panic}", "verification.input_drift.on_drift: expected one of: warn, fail, got 'panic'"),
        ("{psi: 0.2}", "verification.input_drift: unknown key 'psi'"),
        ("0.2", "verification.input_drift: expected a mapping with psi_max, min_rows and on_drift, got 0.2"),
    ],
)
def test_bad_drift_thresholds_are_one_line_errors(lab, section, words):
    wc, _ = lab
    (wc / "gates.yaml").write_text(f"verification:\n  input_drift: {section}\n")
    with pytest.raises(RepoStateError) as caught:
        load_config(wc)
    line = caught.value.one_line()
    assert words in line and "\n" not in line, line


def test_a_partial_drift_section_keeps_the_shipped_values(lab):
    wc, _ = lab
    (wc / "gates.yaml").write_text("verification:\n  input_drift: {psi_max: 0.5}\n")
    loaded = VerificationSettings.from_section(load_config(wc).verification)
    assert loaded.input_drift.psi_max == 0.5 and loaded.input_drift.min_rows == SHIPPED["input_drift"]["min_rows"]


# --------------------------------------------------------------------------- #
# The drift lab's decision step, Git-only: its check runs the pushed server
# as a local process, so `lab test` needs no cluster and no pod.
# --------------------------------------------------------------------------- #
LABS = REPO / "labs"


@pytest.fixture
def decision_lab(tmp_path):
    """labs/drift reduced to its decision step (the others need a cluster), in a labs folder of its own."""
    import shutil

    import yaml

    folder = tmp_path / "labs" / "drift"
    shutil.copytree(LABS / "drift", folder)
    spec = yaml.safe_load((folder / "lab.yaml").read_text(encoding="utf-8"))
    spec["steps"] = [s for s in spec["steps"] if s["id"] == "decide-on-input-drift"]
    spec["steps"][0]["setup"] = [{"restore": {}}]
    (folder / "lab.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return folder.parent


def test_the_decision_step_fails_before_and_passes_after_in_lab_test(lab, cli, decision_lab):
    wc, _ = lab
    result = cli("lab", "test", "drift", "--repo", str(wc), "--labs-dir", str(decision_lab), "--output", "json")
    assert result.exit_code == 0, result.output
    [lab_result] = json.loads(result.stdout)["labs"]
    assert [(c["step"], c["status"]) for c in lab_result["steps"]] == [
        ("decide-on-input-drift", "passed"),
        ("reset", "passed"),
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("decision: rollback\nfeature: temperature_c\n", "says rollback, but the evidence says retrain: prod's inputs"),
        ("decision: retrain\nfeature: rpm\n", "names feature 'rpm'; the one that drifted most is temperature_c (PSI"),
        ("decision: maybe\n", "must say `decision: retrain` or `decision: rollback`"),
    ],
)
def test_a_decision_the_evidence_does_not_support_fails_saying_why(lab, cli, decision_lab, content, words):
    from gitops_lab.adapters.repo.git import Git

    wc, _ = lab
    assert cli("lab", "start", "drift", "--repo", str(wc), "--labs-dir", str(decision_lab)).exit_code == 0
    (wc / "decisions").mkdir()
    (wc / "decisions" / "prod-inputs.yaml").write_text(content, encoding="utf-8")
    git = Git(wc)
    git.run("add", "decisions")
    git.run("commit", "-qm", "My decision on prod's inputs")
    git.run("push", "-q", "origin", "HEAD:main")
    result = cli("lab", "check", "--repo", str(wc), "--labs-dir", str(decision_lab))
    assert result.exit_code != 0
    assert words in result.output, result.output

"""The model workload: dataset, training reproducibility, and the evaluation gate."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO
from gitops_lab.model import EVAL_METRIC, EVAL_THRESHOLD, FEATURES, VERSIONS, dataset
from gitops_lab.model.evaluate import metrics
from gitops_lab.model.dataset import held_out_rows

MODELS = REPO / "environments" / "base" / "models"


def _train(out: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "gitops_lab.model.train", "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )


def _artifacts(folder: Path = MODELS) -> dict[str, dict]:
    return {v: json.loads((folder / f"{v}.json").read_text(encoding="utf-8")) for v in VERSIONS}


def test_training_twice_writes_byte_identical_artifacts(tmp_path):
    _train(tmp_path / "a")
    _train(tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["v1.json", "v2.json", "v3.json", "v4.json", "v5.json", "v6.json"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_committed_artifacts_are_what_training_writes(tmp_path):
    """environments/base/models must be regenerated whenever the data or training change."""
    _train(tmp_path)
    for version in VERSIONS:
        assert (tmp_path / f"{version}.json").read_bytes() == (MODELS / f"{version}.json").read_bytes(), (
            f"{version}.json is stale: run python -m gitops_lab.model.train --out environments/base/models"
        )


def test_dataset_file_is_what_the_generator_makes():
    assert dataset.to_csv(dataset.generate_rows()) == dataset.DATA_FILE.read_text(encoding="utf-8")


def test_preparation_drops_missing_and_impossible_readings():
    raw = dataset.read_raw()
    prepared = dataset.prepare(raw)
    with_blank = [r for r in raw if any(r[c] == "" for c in r)]
    with_fault = [r for r in raw if r["rpm"] == "-1"]
    assert len(raw) == 400
    assert prepared.null_rows == len(with_blank) > 0
    assert prepared.invalid_rows == len(with_fault) > 0
    assert len(prepared.rows) == len(raw) - len(with_blank) - len(with_fault)
    assert all(set(r) == {*FEATURES, "failure"} for r in prepared.rows)


def test_v1_and_v2_pass_the_threshold_and_v3_fails_it():
    artifacts = _artifacts()
    score = {v: a["metrics"][EVAL_METRIC] for v, a in artifacts.items()}
    assert score["v1"] >= EVAL_THRESHOLD
    assert score["v2"] >= EVAL_THRESHOLD
    assert score["v3"] < EVAL_THRESHOLD
    assert score["v2"] > score["v1"]
    for version, artifact in artifacts.items():
        evaluation = artifact["evaluation"]
        assert evaluation["metric"] == EVAL_METRIC
        assert evaluation["threshold"] == EVAL_THRESHOLD
        assert evaluation["passed"] is (version != "v3")


def test_recorded_metrics_match_a_fresh_evaluation_on_the_clean_held_out_split():
    rows = held_out_rows()
    for version, artifact in _artifacts().items():
        assert metrics(artifact["model"], rows) == artifact["metrics"], version
        assert artifact["evaluation"]["rows"] == len(rows)


@pytest.mark.parametrize("version, exit_code", [("v1", 0), ("v2", 0), ("v3", 1)])
def test_evaluate_command_gates_on_the_threshold(version, exit_code):
    result = subprocess.run(
        [sys.executable, "-m", "gitops_lab.model.evaluate", str(MODELS / f"{version}.json")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert result.stdout.startswith(f"{version}: {EVAL_METRIC} ")


def test_artifacts_record_the_training_slice_and_its_data_quality():
    artifacts = _artifacts()
    for version, artifact in artifacts.items():
        assert artifact["version"] == version
        training = artifact["training"]
        assert training["slice"]
        assert training["dataset_sha256"] == dataset.file_sha256()
        quality = training["data_quality"]
        assert quality["rows_read"] == 400
        assert quality["null_rows"] + quality["invalid_rows"] == 400 - quality["prepared_rows"]
        assert sum(quality["label_distribution"].values()) == quality["training_rows"]
        assert set(quality["feature_means"]) == set(FEATURES)
    # v3's drift is visible in its data-quality stats: a data-quality gate can catch it.
    clean = artifacts["v2"]["training"]["data_quality"]["feature_means"]["temperature_c"]
    drifted = artifacts["v3"]["training"]["data_quality"]["feature_means"]["temperature_c"]
    assert drifted > clean * 2
    assert "Fahrenheit" in artifacts["v3"]["training"]["slice"]


def test_models_folder_holds_only_versioned_artifacts_and_their_signatures():
    """The Git core lists versions from environments/base/models/v<N>.json; each ships signed (v<N>.json.sig)."""
    names = sorted(p.name for p in MODELS.iterdir())
    assert names == sorted([f"{v}.json" for v in VERSIONS] + [f"{v}.json.sig" for v in VERSIONS])
    assert all(re.fullmatch(r"v[0-9]+\.json(\.sig)?", n) for n in names)

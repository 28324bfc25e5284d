"""Prepare the data, train the model versions, evaluate them, write artifacts.

    python -m gitops_lab.model.train --out environments/base/models

Everything is deterministic (fixed seeds, fixed epoch count, rounded outputs):
running it again writes byte-identical files.

- v1, the baseline: logistic regression on two sensors (temperature, vibration).
- v2, better: the same model on all four sensors.
- v3, deliberately bad: all four sensors, but trained on a drifted slice in which
  the temperature sensor reported Fahrenheit after a firmware update. On clean
  Celsius readings it sees every pump as very cold, predicts no failure at all,
  and its evaluation on the clean held-out split falls below the threshold.
- v4 and v5 are v2's model with a serving contract the offline evaluation never
  applies: v4 fails wherever it serves; v5 fails only on prod's hotter pumps.
- v6, good overall and bad on one segment: three sensors, the temperature sensor
  dropped after v3's Fahrenheit incident. Its accuracy (0.74) beats v1's and
  passes the threshold, but without temperature it cannot tell a cool pump
  from a hot one: on the held-out pumps below 60 C it is right 58% of the time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from gitops_lab.model import EVAL_METRIC, EVAL_THRESHOLD, FEATURES, LABEL, VERSIONS
from gitops_lab.model import dataset
from gitops_lab.model.dataset import SPLIT_SEED, TEST_FRACTION
from gitops_lab.model.evaluate import metrics, passes, predict, predict_proba

EPOCHS = 400
LEARNING_RATE = 0.2
L2 = 0.001
SELF_CHECK_ROWS = 6
ARTIFACT_FORMAT = 1

# What each version is trained on. The drift is applied to the training split
# only; every version is evaluated on the same clean held-out split.
RECIPES: dict[str, dict[str, Any]] = {
    "v1": {
        "features": ("temperature_c", "vibration_mm_s"),
        "drift": None,
        "description": "baseline: logistic regression on temperature and vibration",
        "slice": "clean training split (70% of the prepared rows, split seed 7)",
    },
    "v2": {
        "features": FEATURES,
        "drift": None,
        "description": "logistic regression on all four sensors",
        "slice": "clean training split (70% of the prepared rows, split seed 7)",
    },
    "v3": {
        "features": FEATURES,
        "drift": "fahrenheit",
        "description": "deliberately bad: all four sensors, trained on a drifted slice",
        "slice": (
            "drifted training split: the same rows as v2, but temperature_c was "
            "recorded in Fahrenheit (sensor firmware update), so it is shifted and scaled"
        ),
    },
    "v4": {
        "features": FEATURES,
        "drift": None,
        "description": "v2's model re-exported with an input contract that says temperature arrives in Fahrenheit",
        "slice": "clean training split (70% of the prepared rows, split seed 7)",
        # The export pipeline took the unit from the drifted fleet's metadata: the
        # server converts what it receives, the offline evaluation never sees it.
        "serving": {"input_units": {"temperature_c": "fahrenheit"}},
    },
    "v5": {
        "features": FEATURES,
        "drift": None,
        "description": "v2's model re-exported with an input guard: a temperature outside the sensor's "
        "calibrated 0-80 C counts as a sensor fault and is replaced by the training mean",
        "slice": "clean training split (70% of the prepared rows, split seed 7)",
        # The guard lives in the serving contract only: the offline evaluation never
        # applies it. Few held-out pumps run above 80 C; many of prod's do, and fail.
        "serving": {"valid_ranges": {"temperature_c": [0.0, 80.0]}},
    },
    "v6": {
        "features": ("vibration_mm_s", "pressure_bar", "rpm"),
        "drift": None,
        "description": "logistic regression on vibration, pressure and rpm: the temperature sensor was "
        "dropped as unreliable after v3's Fahrenheit incident",
        "slice": "clean training split (70% of the prepared rows, split seed 7)",
    },
}


def _drift(rows: list[dict[str, float]], kind: str | None) -> list[dict[str, float]]:
    if kind is None:
        return rows
    if kind == "fahrenheit":
        return [{**r, "temperature_c": round(r["temperature_c"] * 9 / 5 + 32, 1)} for r in rows]
    raise ValueError(f"unknown drift {kind!r}")


def _prepared():
    raw = dataset.read_raw()
    return raw, dataset.prepare(raw)


def _sig(value: float) -> float:
    """Round to 10 significant digits so artifacts do not depend on the last ulp."""
    return float(f"{value:.10g}")


def fit(rows: list[dict[str, float]], features: tuple[str, ...]) -> dict:
    """Batch gradient descent on standardized features, L2-regularized."""
    n = len(rows)
    means = [sum(r[f] for r in rows) / n for f in features]
    stds = [math.sqrt(sum((r[f] - m) ** 2 for r in rows) / n) or 1.0 for f, m in zip(features, means)]
    xs = [[(r[f] - m) / s for f, m, s in zip(features, means, stds)] for r in rows]
    ys = [int(r[LABEL]) for r in rows]
    weights = [0.0] * len(features)
    bias = 0.0
    for _ in range(EPOCHS):
        grad_w = [0.0] * len(features)
        grad_b = 0.0
        for x, y in zip(xs, ys):
            z = bias + sum(w * v for w, v in zip(weights, x))
            p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            err = p - y
            grad_b += err
            for j, v in enumerate(x):
                grad_w[j] += err * v
        bias -= LEARNING_RATE * grad_b / n
        weights = [w - LEARNING_RATE * (g / n + L2 * w) for w, g in zip(weights, grad_w)]
    return {
        "type": "logistic_regression",
        "features": list(features),
        "feature_means": [_sig(m) for m in means],
        "feature_stds": [_sig(s) for s in stds],
        "weights": [_sig(w) for w in weights],
        "bias": _sig(bias),
        "decision_threshold": 0.5,
    }


def build_artifacts() -> dict[str, dict]:
    """Train and evaluate every version; return {version: artifact}."""
    raw, prepared = _prepared()
    train_rows, test_rows = dataset.split(prepared.rows, SPLIT_SEED, TEST_FRACTION)
    # Self-check rows: fixed held-out rows, features only, that the server
    # must reproduce exactly before it reports ready.
    check_rows = [{f: r[f] for f in FEATURES} for r in test_rows[:SELF_CHECK_ROWS]]
    artifacts = {}
    for version in VERSIONS:
        recipe = RECIPES[version]
        rows = _drift(train_rows, recipe["drift"])
        params = fit(rows, recipe["features"])
        result = metrics(params, test_rows)
        artifacts[version] = {
            "format": ARTIFACT_FORMAT,
            "version": version,
            "description": recipe["description"],
            "model": params,
            "metrics": result,
            "evaluation": {
                "split": f"clean held-out split ({TEST_FRACTION:.0%} of the prepared rows, split seed {SPLIT_SEED})",
                "rows": len(test_rows),
                "metric": EVAL_METRIC,
                "threshold": EVAL_THRESHOLD,
                "passed": passes(result),
            },
            "training": {
                "dataset": dataset.DATA_FILE.name,
                "dataset_sha256": dataset.file_sha256(),
                "slice": recipe["slice"],
                "split_seed": SPLIT_SEED,
                "epochs": EPOCHS,
                "learning_rate": LEARNING_RATE,
                "l2": L2,
                "data_quality": dataset.quality_stats(rows, prepared),
            },
            **({"serving": recipe["serving"]} if "serving" in recipe else {}),
            "self_check": {
                "instances": check_rows,
                "expected_probabilities": [_sig(predict_proba(params, r)) for r in check_rows],
                "expected_predictions": [predict(params, r) for r in check_rows],
                "tolerance": 1e-8,
            },
        }
    return artifacts


def write_artifacts(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for version, artifact in build_artifacts().items():
        path = out / f"{version}.json"
        path.write_text(json.dumps(artifact, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and evaluate the lab's model versions.")
    parser.add_argument("--out", type=Path, required=True, help="folder for <version>.json")
    args = parser.parse_args(argv)
    for path in write_artifacts(args.out):
        artifact = json.loads(path.read_text(encoding="utf-8"))
        m = artifact["metrics"]
        verdict = "pass" if artifact["evaluation"]["passed"] else "FAIL"
        print(
            f"{artifact['version']}  {EVAL_METRIC} {m[EVAL_METRIC]:.4f}  f1 {m['f1']:.4f}  "
            f"log_loss {m['log_loss']:.4f}  {verdict} (threshold {EVAL_THRESHOLD})  -> {path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

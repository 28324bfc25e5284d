"""Evaluate a model artifact on the clean held-out split, and gate on the threshold.

    python -m gitops_lab.model.evaluate environments/base/models/v3.json

prints the artifact's metrics recomputed on the held-out split and exits 1 if
``EVAL_METRIC`` falls below ``EVAL_THRESHOLD`` (0 if it passes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from gitops_lab.model import EVAL_METRIC, EVAL_THRESHOLD, LABEL
from gitops_lab.model.dataset import held_out_rows


def predict_proba(params: dict, instance: dict[str, float]) -> float:
    """P(failure) for one instance: logistic regression on standardized features.

    environments/base/server.py repeats exactly this arithmetic, in this order.
    """
    z = params["bias"]
    for name, mean, std, weight in zip(
        params["features"], params["feature_means"], params["feature_stds"], params["weights"]
    ):
        z += weight * ((float(instance[name]) - mean) / std)
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def predict(params: dict, instance: dict[str, float]) -> int:
    return 1 if predict_proba(params, instance) >= params["decision_threshold"] else 0


def metrics(params: dict, rows: list[dict[str, float]]) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 and log loss on labelled rows."""
    tp = fp = tn = fn = 0
    loss = 0.0
    for row in rows:
        p = predict_proba(params, row)
        y = int(row[LABEL])
        yhat = 1 if p >= params["decision_threshold"] else 0
        if yhat == 1:
            tp, fp = (tp + 1, fp) if y == 1 else (tp, fp + 1)
        else:
            tn, fn = (tn + 1, fn) if y == 0 else (tn, fn + 1)
        p = min(max(p, 1e-12), 1 - 1e-12)
        loss -= math.log(p) if y == 1 else math.log(1 - p)
    n = len(rows)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": round((tp + tn) / n, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "log_loss": round(loss / n, 4),
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
    }


def passes(model_metrics: dict) -> bool:
    return model_metrics[EVAL_METRIC] >= EVAL_THRESHOLD


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a model artifact on the held-out split.")
    parser.add_argument("artifact", type=Path, help="a models/<version>.json file")
    args = parser.parse_args(argv)
    artifact = json.loads(args.artifact.read_text(encoding="utf-8"))
    result = metrics(artifact["model"], held_out_rows())
    ok = passes(result)
    verdict = "passes" if ok else "FAILS"
    print(
        f"{artifact['version']}: {EVAL_METRIC} {result[EVAL_METRIC]:.4f} {verdict} "
        f"the threshold {EVAL_THRESHOLD} (precision {result['precision']:.4f}, "
        f"recall {result['recall']:.4f}, f1 {result['f1']:.4f})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

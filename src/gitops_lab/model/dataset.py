"""The pump-failure dataset: how it was made, how it is read and prepared.

``data/pump_failures.csv`` is a deterministic synthetic dataset, made by
:func:`generate_rows` with ``GENERATOR_SEED`` (``python -m
gitops_lab.model.dataset --write`` rewrites it byte for byte). Each row is one
industrial pump on one day: four sensor readings and whether the pump failed
within the next 7 days. The label is drawn from a logistic model in which all
four sensors matter (hot, vibrating, fast-spinning pumps with low inlet
pressure fail more), so a model that sees all four sensors beats one that sees
only two. About 2% of rows have a missing reading and about 1% an impossible one
(a sensor fault), which :func:`prepare` drops and counts.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from gitops_lab.model import FEATURES, LABEL

DATA_FILE = Path(__file__).resolve().parent / "data" / "pump_failures.csv"
GENERATOR_SEED = 20240611
ROW_COUNT = 400
#: The train/test split of the prepared rows: every version is evaluated on the same held-out rows.
SPLIT_SEED = 7
TEST_FRACTION = 0.3

# Physically possible ranges; a reading outside them is a sensor fault.
VALID_RANGES = {
    "temperature_c": (-20.0, 150.0),
    "vibration_mm_s": (0.0, 50.0),
    "pressure_bar": (0.0, 20.0),
    "rpm": (0.0, 6000.0),
}

# The generator's feature distributions (mean, standard deviation) and the
# true logistic model's weights on standardized features.
_DISTRIBUTIONS = {
    "temperature_c": (68.0, 9.0),
    "vibration_mm_s": (4.0, 1.6),
    "pressure_bar": (6.0, 0.9),
    "rpm": (1500.0, 220.0),
}
_TRUE_BIAS = -0.5
_TRUE_WEIGHTS = {"temperature_c": 2.0, "vibration_mm_s": 1.8, "pressure_bar": -1.7, "rpm": 1.6}
_DECIMALS = {"temperature_c": 1, "vibration_mm_s": 2, "pressure_bar": 2, "rpm": 0}


# Prod's traffic: pumps at the prod plant run hotter and at a higher inlet
# pressure than the fleet the dataset sampled. The same true model labels them.
PROD_TRAFFIC_SEED = 20260601
PROD_TRAFFIC_COUNT = 120
PROD_TRAFFIC_SHIFT = {"temperature_c": 14.0, "pressure_bar": 1.0}


def generate_rows(
    seed: int = GENERATOR_SEED, count: int = ROW_COUNT, shift: dict[str, float] | None = None
) -> list[dict[str, str]]:
    """Make the dataset's rows as CSV strings, deterministically from ``seed``;
    ``shift`` moves features' means (another population, labelled by the same true model)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        values = {}
        logit = _TRUE_BIAS
        for name in FEATURES:
            mean, std = _DISTRIBUTIONS[name]
            value = round(rng.gauss(mean + (shift or {}).get(name, 0.0), std), _DECIMALS[name])
            if name == "vibration_mm_s":
                value = max(value, 0.2)
            values[name] = value
            logit += _TRUE_WEIGHTS[name] * (value - mean) / std
        label = 1 if rng.random() < 1.0 / (1.0 + math.exp(-logit)) else 0
        row = {name: _format(name, values[name]) for name in FEATURES}
        row[LABEL] = str(label)
        fault = rng.random()
        if fault < 0.02:
            row[FEATURES[rng.randrange(len(FEATURES))]] = ""
        elif fault < 0.03:
            row["rpm"] = "-1"  # the controller's "sensor offline" code
        rows.append(row)
    return rows


def _format(name: str, value: float) -> str:
    decimals = _DECIMALS[name]
    return str(int(value)) if decimals == 0 else f"{value:.{decimals}f}"


def to_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*FEATURES, LABEL], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_raw(path: Path = DATA_FILE) -> list[dict[str, str]]:
    """The CSV's rows, as strings, unvalidated."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def file_sha256(path: Path = DATA_FILE) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Prepared:
    """Clean rows (features as floats, label as int) and what was dropped."""

    rows: list[dict[str, float]]
    rows_read: int
    null_rows: int
    invalid_rows: int
    dropped: list[int] = field(default_factory=list)


def prepare(raw: list[dict[str, str]]) -> Prepared:
    """Drop rows with a missing or impossible value; parse the rest."""
    clean: list[dict[str, float]] = []
    null_rows = invalid_rows = 0
    dropped = []
    for index, row in enumerate(raw):
        if any((row.get(name) or "").strip() == "" for name in (*FEATURES, LABEL)):
            null_rows += 1
            dropped.append(index)
            continue
        try:
            parsed = {name: float(row[name]) for name in FEATURES}
            label = int(row[LABEL])
        except ValueError:
            invalid_rows += 1
            dropped.append(index)
            continue
        in_range = all(lo <= parsed[n] <= hi for n, (lo, hi) in VALID_RANGES.items())
        if not in_range or label not in (0, 1) or not all(map(math.isfinite, parsed.values())):
            invalid_rows += 1
            dropped.append(index)
            continue
        parsed[LABEL] = label
        clean.append(parsed)
    return Prepared(clean, len(raw), null_rows, invalid_rows, dropped)


def split(rows: list[dict[str, float]], seed: int, test_fraction: float) -> tuple[list, list]:
    """A deterministic shuffled train/test split."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = round(len(rows) * test_fraction)
    test = [rows[i] for i in sorted(order[:n_test])]
    train = [rows[i] for i in sorted(order[n_test:])]
    return train, test


def held_out_rows() -> list[dict[str, float]]:
    """The clean held-out split every version is evaluated on."""
    return split(prepare(read_raw()).rows, SPLIT_SEED, TEST_FRACTION)[1]


def quality_stats(training_rows: list[dict[str, float]], prepared: Prepared) -> dict:
    """Simple data-quality numbers a later gate can compare between versions.

    ``rows_read``, ``null_rows``, ``invalid_rows`` and ``prepared_rows`` describe
    the whole CSV and its preparation; the rest describe the training rows.
    """
    n = len(training_rows)
    labels = [int(r[LABEL]) for r in training_rows]
    means = {name: sum(r[name] for r in training_rows) / n for name in FEATURES}
    stds = {name: math.sqrt(sum((r[name] - means[name]) ** 2 for r in training_rows) / n) for name in FEATURES}
    return {
        "rows_read": prepared.rows_read,
        "null_rows": prepared.null_rows,
        "invalid_rows": prepared.invalid_rows,
        "prepared_rows": len(prepared.rows),
        "training_rows": n,
        "label_distribution": {"0": labels.count(0), "1": labels.count(1)},
        "positive_rate": round(labels.count(1) / n, 4),
        "feature_means": {k: round(v, 4) for k, v in means.items()},
        "feature_stds": {k: round(v, 4) for k, v in stds.items()},
    }


def prod_traffic_rows() -> list[dict[str, float]]:
    """Requests prod's model server received, labelled with what happened to each pump
    (prepared like the dataset: faulty readings dropped). Prod's verification replays them."""
    rows = generate_rows(PROD_TRAFFIC_SEED, PROD_TRAFFIC_COUNT, PROD_TRAFFIC_SHIFT)
    return prepare(rows).rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {DATA_FILE.name}")
    args = parser.parse_args(argv)
    text = to_csv(generate_rows())
    if args.write:
        DATA_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {DATA_FILE}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The data-quality gate: was the candidate trained on data like the reference data?

Reads the training-data statistics the artifact records (``training.data_quality``,
written by ``gitops_lab.model.train``) and compares them with the clean dataset
that ships with the model, prepared and summarised by the model package's own
code (``dataset.prepare`` and ``dataset.quality_stats``).

Checks: enough training rows; few rows dropped as null or invalid; label balance
within bounds; and, per feature, no drift: the mean shift in reference standard
deviations and a population stability index (PSI) of the normal approximations.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist
from typing import Any

from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.gates.result import GateContext, GateResult, check_line, failures
from gitops_lab.model import dataset

NAME = "data-quality"
_PSI_BINS = 10
_PSI_FLOOR = 1e-4


@lru_cache(maxsize=1)
def reference_stats() -> dict[str, Any]:
    """Quality statistics of the whole clean reference dataset, as training records them."""
    prepared = dataset.prepare(dataset.read_raw())
    return dataset.quality_stats(prepared.rows, prepared)


def psi(ref_mean: float, ref_std: float, mean: float, std: float, bins: int = _PSI_BINS) -> float:
    """Population stability index between two normal approximations.

    Bins are the reference distribution's quantiles, so each holds 1/bins of the
    reference; the candidate's share of each bin comes from its own normal.
    Rules of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
    """
    ref = NormalDist(ref_mean, ref_std)
    cand = NormalDist(mean, max(std, 1e-9))
    edges = [-math.inf, *(ref.inv_cdf(i / bins) for i in range(1, bins)), math.inf]
    actual = [cand.cdf(hi) - cand.cdf(lo) for lo, hi in zip(edges, edges[1:])]
    return psi_of_shares([1.0 / bins] * bins, actual)


def psi_of_shares(expected: list[float], actual: list[float]) -> float:
    """PSI of two distributions given as each bin's share (each list sums to 1).

    A bin empty on either side counts as a tiny share, so one empty bin makes a
    large index rather than an infinite one. Also used on the model server's live
    input histograms (gitops_lab.workflows.verify).
    """
    total = 0.0
    for want, got in zip(expected, actual, strict=True):
        want, got = max(want, _PSI_FLOOR), max(got, _PSI_FLOOR)
        total += (got - want) * math.log(got / want)
    return total


def check(ctx: GateContext) -> GateResult:
    artifact = RepoLayout(ctx.root).model_artifact(ctx.version)
    stats = (artifact.get("training") or {}).get("data_quality")
    if not isinstance(stats, dict):
        return GateResult(
            NAME,
            False,
            f"{ctx.version} records no training data statistics",
            [f"fail: base/models/{ctx.version}.json has no training.data_quality"],
        )
    s = ctx.settings
    ref = reference_stats()
    details: list[str] = []
    try:
        rows = int(stats["training_rows"])
        details.append(
            check_line(rows >= s["min_training_rows"], f"training rows {rows} (min {s['min_training_rows']})")
        )
        read = int(stats["rows_read"]) or 1
        dropped = (int(stats["null_rows"]) + int(stats["invalid_rows"])) / read
        details.append(
            check_line(
                dropped <= s["max_dropped_fraction"],
                f"null or invalid rows {dropped:.1%} of rows read (max {s['max_dropped_fraction']:.1%})",
            )
        )
        rate = float(stats["positive_rate"])
        lo, hi = s["positive_rate"]["min"], s["positive_rate"]["max"]
        details.append(check_line(lo <= rate <= hi, f"positive rate {rate:.2f} (bounds {lo}-{hi})"))
        means, stds = stats["feature_means"], stats["feature_stds"]
        if not isinstance(means, dict) or not isinstance(stds, dict):
            raise TypeError("feature_means or feature_stds (not an object)")
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        return GateResult(
            NAME,
            False,
            f"{ctx.version}'s training data statistics are incomplete",
            [*details, f"fail: training.data_quality lacks or mangles {error}"],
        )

    worst_shift = worst_psi = 0.0
    for feature in ref["feature_means"]:
        if feature not in means or feature not in stds:
            details.append(f"fail: {feature}: no mean or std recorded for the training data")
            continue
        ref_mean, ref_std = ref["feature_means"][feature], ref["feature_stds"][feature]
        try:
            mean, std = float(means[feature]), float(stds[feature])
        except (TypeError, ValueError):
            details.append(f"fail: {feature}: its mean or std is not a number")
            continue
        if not (math.isfinite(mean) and math.isfinite(std)):
            details.append(f"fail: {feature}: its mean or std is not finite")
            continue
        shift = abs(mean - ref_mean) / ref_std
        index = psi(ref_mean, ref_std, mean, std)
        worst_shift, worst_psi = max(worst_shift, shift), max(worst_psi, index)
        details.append(
            check_line(
                shift <= s["max_mean_shift"],
                f"{feature} drift: mean {mean:g} vs reference {ref_mean:g}, "
                f"shift {shift:.2f} sd (max {s['max_mean_shift']})",
            )
        )
        details.append(check_line(index <= s["max_psi"], f"{feature} drift: PSI {index:.2f} (max {s['max_psi']})"))

    failed = failures(details)
    if failed:
        return GateResult(NAME, False, _failure_summary(failed), details)
    summary = f"{rows} rows, {dropped:.1%} dropped, max drift {worst_shift:.2f} sd, PSI {worst_psi:.2f}"
    return GateResult(NAME, True, summary, details)


def _failure_summary(failed: list[str], shown: int = 2) -> str:
    more = f" and {len(failed) - shown} more" if len(failed) > shown else ""
    return "; ".join(failed[:shown]) + more

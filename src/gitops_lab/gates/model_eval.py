"""The model-evaluation gate: is the candidate good enough, and not worse than now?

The artifact records its metrics on the clean held-out split and the threshold
it was judged by (``gitops_lab.model.EVAL_METRIC`` / ``EVAL_THRESHOLD``). This
gate checks the metric against the threshold (or gates.yaml's ``min_score``),
optionally recomputes the metric from the artifact's own weights so an edited
number cannot pass, and optionally compares it with the version the destination
runs now (``regression: fail | warn | off``).
"""

from __future__ import annotations

from typing import Any

from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.errors import NotFound
from gitops_lab.gates.result import GateContext, GateResult, check_line, failures
from gitops_lab.model import EVAL_METRIC, EVAL_THRESHOLD
from gitops_lab.model.dataset import held_out_rows
from gitops_lab.model.evaluate import metrics

NAME = "model-eval"
# Artifacts round metrics to 4 decimals.
_RECORD_TOLERANCE = 1e-4 + 1e-9


def _metric(artifact: dict[str, Any], name: str) -> float | None:
    value = (artifact.get("metrics") or {}).get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def check(ctx: GateContext) -> GateResult:
    layout = RepoLayout(ctx.root)
    artifact = layout.model_artifact(ctx.version)
    evaluation = artifact.get("evaluation") or {}
    metric = evaluation.get("metric") or EVAL_METRIC
    value = _metric(artifact, metric)
    if value is None:
        return GateResult(
            NAME,
            False,
            f"{ctx.version} records no {metric}",
            [f"fail: base/models/{ctx.version}.json has no metrics.{metric}"],
        )
    threshold = ctx.settings.get("min_score")
    if threshold is None:
        threshold = evaluation.get("threshold", EVAL_THRESHOLD)
    threshold = float(threshold)
    details = [
        check_line(value >= threshold, f"{metric} {value:g} {'>=' if value >= threshold else '<'} {threshold:g}")
    ]

    if ctx.settings.get("verify_metric"):
        details.append(_verify(artifact, metric, value))

    summary_extra = ""
    mode = ctx.settings.get("regression", "off")
    if mode != "off" and ctx.current != ctx.version:
        line = _regression(layout, ctx, metric, value, float(ctx.settings.get("regression_tolerance", 0.0)))
        if line.startswith("fail: ") and mode == "warn":
            line = "warn: " + line.removeprefix("fail: ")
            summary_extra = f"; warning: worse than {ctx.current} in {ctx.dst}"
        details.append(line)

    failed = failures(details)
    if failed:
        return GateResult(NAME, False, "; ".join(failed), details)
    return GateResult(NAME, True, f"{metric} {value:g} >= {threshold:g}{summary_extra}", details)


def _verify(artifact: dict[str, Any], metric: str, recorded: float) -> str:
    try:
        recomputed = metrics(artifact["model"], held_out_rows())[metric]
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        return f"fail: cannot recompute {metric} from the artifact's model ({error!r})"
    same = abs(recomputed - recorded) <= _RECORD_TOLERANCE
    verb = "matches" if same else "does not match"
    return check_line(same, f"recorded {metric} {recorded:g} {verb} {recomputed:g} recomputed on the held-out split")


def _regression(layout: RepoLayout, ctx: GateContext, metric: str, value: float, tolerance: float) -> str:
    try:
        current = _metric(layout.model_artifact(ctx.current), metric)
    except NotFound:
        current = None
    if current is None:
        return f"pass: {ctx.dst} runs {ctx.current}, which records no {metric}; nothing to compare"
    ok = value >= current - tolerance
    relation = "not worse than" if ok else "worse than"
    return check_line(ok, f"{metric} {value:g} {relation} {ctx.current} ({current:g}), which {ctx.dst} runs now")

"""Run the gates a destination requires, and turn verdicts into commit trailers."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.errors import UsageError
from gitops_lab.gates import approval, data_quality, model_eval, policy
from gitops_lab.gates.config import GATES, GatesConfig, load_config
from gitops_lab.gates.result import GateContext, GateResult

CHECKS: dict[str, Callable[[GateContext], GateResult]] = {
    data_quality.NAME: data_quality.check,
    model_eval.NAME: model_eval.check,
    policy.NAME: policy.check,
    approval.NAME: approval.check,
}
assert tuple(CHECKS) == GATES


def check_gate_names(names: Collection[str]) -> None:
    unknown = [n for n in names if n not in GATES]
    if unknown:
        raise UsageError(f"unknown gate {', '.join(map(repr, unknown))}", fix=f"use one of: {', '.join(GATES)}")


def required_gates(repo_path: str | Path, dst: str) -> list[str]:
    """The gates gates.yaml requires for promotions to ``dst``, in order."""
    RepoLayout(repo_path).check_env(dst)
    return load_config(repo_path).required_for(dst)


def run_gates(
    repo_path: str | Path,
    src: str,
    dst: str,
    version: str | None = None,
    only: list[str] | None = None,
    skip: Collection[str] = (),
    skipped_by: str = "",
) -> list[GateResult]:
    """Run the gates for promoting ``version`` (default: ``src``'s) from ``src`` to ``dst``.

    Without ``only``: the gates gates.yaml requires for ``dst``, in its order.
    With ``only``: exactly those gates (any known gate), in the canonical order.
    Gates in ``skip`` are not run; they come back as skipped (and passed).
    Reads the working copy as it is; changes nothing.
    """
    root = Path(repo_path)
    layout = RepoLayout(root)
    layout.check_env(src)
    layout.check_env(dst)
    version = layout.check_version(version or layout.model_version(src))
    config = load_config(root)
    if only is not None:
        check_gate_names(only)
        names = [g for g in GATES if g in only]
    else:
        names = config.required_for(dst)
    return judge(root, config, src, dst, version, names, skip, skipped_by)


def judge(
    repo_path: str | Path,
    config: GatesConfig,
    src: str,
    dst: str,
    version: str,
    names: list[str],
    skip: Collection[str] = (),
    skipped_by: str = "",
) -> list[GateResult]:
    """Run the gates ``names`` on a promotion whose environments and ``version`` were already checked.

    ``run_gates`` checks them first; a promotion checks them once, before it
    catches up with the remote, and hands its config here.
    """
    root = Path(repo_path)
    current = RepoLayout(root).model_version(dst)
    results = []
    for name in names:
        if name in skip:
            results.append(GateResult(name, True, f"skipped by {skipped_by or 'unknown'}", [], skipped=True))
            continue
        ctx = GateContext(root, src, dst, version, current, config.settings.get(name, {}))
        results.append(CHECKS[name](ctx))
    return results


def trailer_key(name: str, prefix: str = "Gate") -> str:
    """``model-eval`` -> ``Gate-Model-Eval``."""
    return f"{prefix}-" + "-".join(part.capitalize() for part in name.split("-"))


def gate_trailers(results: list[GateResult], prefix: str = "Gate") -> list[tuple[str, str]]:
    """One trailer per gate (or check): ``pass (summary)``, ``fail (summary)`` or ``skipped by NAME``."""
    trailers = []
    for result in results:
        if result.skipped:
            value = result.summary
        else:
            summary = " ".join(result.summary.split())
            value = f"{result.verdict} ({summary})" if summary else result.verdict
        trailers.append((trailer_key(result.name, prefix), value))
    return trailers


def advice(results: list[GateResult], src: str, dst: str, version: str) -> str:
    """What to do about the failing gates, each with the fix that matches it."""
    failed = {r.name: r for r in results if not r.passed}
    fixes = []
    model = [name for name in (data_quality.NAME, model_eval.NAME) if name in failed]
    if model:
        fixes.append(f"{version} itself fails {' and '.join(model)}: promote another version (--version)")
    if policy.NAME in failed:
        fixes.append("fix the manifest the policy lines name (commit and push it), then run the gate again")
    if approval.NAME in failed:
        second = any("separate_duties" in line for line in failed[approval.NAME].details)
        fixes.append(
            f"record an approval with `gitops-lab approve --env {dst} --version {version}"
            + (" --by 'NAME <EMAIL>'` as someone other than the promoter" if second else "`")
        )
    return "; ".join(fixes)

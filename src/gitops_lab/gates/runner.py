"""Run the gates a destination requires, and turn verdicts into commit trailers.

Built-in gates are the table below; custom gates come from gates.yaml's
``custom:`` section (gates/custom.py) and run in the same loop, so they are
required, skipped, reported and recorded exactly like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.errors import UsageError
from gitops_lab.gates import approval, custom, data_quality, model_eval, policy, secret_scan, vuln_scan
from gitops_lab.gates.config import GATES, GatesConfig, load_config
from gitops_lab.gates.result import GateContext, GateResult
from gitops_lab.deadline import Deadline

CHECKS: dict[str, Callable[[GateContext], GateResult]] = {
    data_quality.NAME: data_quality.check,
    model_eval.NAME: model_eval.check,
    policy.NAME: policy.check,
    secret_scan.NAME: secret_scan.check,
    vuln_scan.NAME: vuln_scan.check,
    approval.NAME: approval.check,
}
assert tuple(CHECKS) == GATES


def check_gate_names(names: Collection[str], config: GatesConfig | None = None) -> None:
    """Refuse names that are no gate: built-in, or (given ``config``) declared under ``custom:``."""
    known = config.names if config is not None else GATES
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown gate {', '.join(map(repr, unknown))}", fix=f"use one of: {', '.join(known)}")


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
    with_custom: bool = False,
    deadline: Deadline | None = None,
) -> list[GateResult]:
    """Run the gates for promoting ``version`` (default: ``src``'s) from ``src`` to ``dst``.

    Without ``only``: the gates gates.yaml requires for ``dst``, in its order.
    With ``only``: exactly those gates (any known gate, custom ones included),
    built-in ones first, then custom ones in gates.yaml's order; ``with_custom``
    adds the custom gates ``dst`` requires (the pipeline's evaluation stage).
    Gates in ``skip`` are not run; they come back as skipped (and passed).
    Custom gates end by ``deadline`` (default: the command's).
    Reads the working copy as it is; changes nothing.
    """
    root = Path(repo_path)
    layout = RepoLayout(root)
    layout.check_env(src)
    layout.check_env(dst)
    version = layout.check_version(version or layout.model_version(src))
    config = load_config(root)
    if only is not None:
        check_gate_names(only, config)
        wanted = set(only) | ({g for g in config.required_for(dst) if g in config.custom} if with_custom else set())
        names = [g for g in config.names if g in wanted]
    else:
        names = config.required_for(dst)
    return judge(root, config, src, dst, version, names, skip, skipped_by, deadline)


def judge(
    repo_path: str | Path,
    config: GatesConfig,
    src: str,
    dst: str,
    version: str,
    names: list[str],
    skip: Collection[str] = (),
    skipped_by: str = "",
    deadline: Deadline | None = None,
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
        if name in config.custom:
            results.append(custom.check(config.custom[name], ctx, deadline))
        else:
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
    # The secret scan and custom gates know their own fix (a broken gate's, or "promote another version").
    handled = (data_quality.NAME, model_eval.NAME, policy.NAME, approval.NAME)
    fixes += [f"{r.name}: {r.fix}" for r in results if not r.passed and r.fix and r.name not in handled]
    return "; ".join(fixes)

"""Promote and roll back: gate, change Git, push, then (optionally) wait for the engine.

A promotion first validates its input and catches up with the remote, then runs
the validation gates gates.yaml requires for the destination. If any gate
fails, it stops with GateFailed (exit code 4) before touching the working copy.
Otherwise every verdict goes into the promotion commit's trailers
(``Gate-Model-Eval: pass (accuracy 0.8276 >= 0.65)``).

Rollback runs no gates: rolling back must always be possible.

The engine steps (request a reconcile, wait until the environment serves the
version) plug in after the push through ``after_push``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from gitops_lab.adapters import repo
from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.adapters.repo.promotion import ChangeResult, check_promotion
from gitops_lab.errors import GateFailed, UsageError
from gitops_lab.gates import GateResult, GatesConfig, check_gate_names, gate_trailers, load_config, run_gates
from gitops_lab.gates.runner import advice
from gitops_lab.adapters.repo.identity import git_user
from gitops_lab.reporter import Reporter

AfterPush = Callable[[ChangeResult, Reporter], None]


def run_promotion(
    reporter: Reporter,
    repo_path: Path,
    src: str,
    dst: str,
    version: str | None = None,
    extra_trailers: list[tuple[str, str]] | None = None,
    after_push: AfterPush | None = None,
    skip_gates: Collection[str] = (),
) -> ChangeResult:
    """Gate and promote ``version`` (default: ``src``'s) from ``src`` to ``dst``.

    ``skip_gates`` names required gates not to run; gates.yaml's ``skippable``
    must allow each, and each is recorded as ``Gate-<Name>: skipped by <user>``.
    """
    git, layout = Git(repo_path), RepoLayout(repo_path)
    # The same checks as repo.promote: bad input fails the same way whether or not gates would run.
    check_promotion(git, layout, src, dst, version)
    _check_skips(load_config(repo_path), dst, skip_gates)
    publish.catch_up(git)
    # gates.yaml may have changed on the remote: check again after catching up.
    _check_skips(load_config(repo_path), dst, skip_gates)
    target = layout.check_version(version or layout.model_version(src))

    trailers: list[tuple[str, str]] = []
    if layout.model_version(dst) != target:
        results = run_gates(repo_path, src, dst, target, skip=skip_gates, skipped_by=git_user(git))
        failed = [r for r in results if not r.passed]
        if failed:
            raise _refusal(src, dst, target, failed, results)
        trailers = gate_trailers(results)
        if results:
            reporter.info(f"gates for {dst}: " + ", ".join(f"{r.name} {r.verdict}" for r in results))

    # The exact version the gates judged, so a change to src meanwhile cannot slip through.
    result = repo.promote(
        repo_path, src, dst, target, extra_trailers=[*trailers, *(extra_trailers or [])],
        on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
    )
    if result.changed and after_push:
        after_push(result, reporter)
    return result


def _check_skips(config: GatesConfig, dst: str, skip: Collection[str]) -> None:
    if not skip:
        return
    check_gate_names(skip)
    required = config.required_for(dst)
    not_required = [g for g in skip if g not in required]
    if not_required:
        raise UsageError(
            f"--skip-gate {', '.join(not_required)}: {dst} does not require "
            f"{'it' if len(not_required) == 1 else 'them'} (it requires {', '.join(required) or 'no gates'})",
            fix="drop the option",
        )
    locked = [g for g in skip if g not in config.skippable]
    if locked:
        raise UsageError(
            f"the {', '.join(locked)} gate cannot be skipped (gates.yaml skippable: {', '.join(config.skippable) or 'none'})",
            fix="record an approval with `gitops-lab approve`" if "approval" in locked
            else "let the gate run, or change `skippable` in gates.yaml through Git",
        )


def _refusal(src: str, dst: str, version: str, failed: list[GateResult], results: list[GateResult]) -> GateFailed:
    names = ", ".join(f"{r.name} ({r.summary})" for r in failed)
    return GateFailed(
        f"promotion of {version} to {dst} blocked by {len(failed)} failing gate{'s' if len(failed) != 1 else ''}: {names}",
        fix=f"{advice(results, src, dst, version)}; `gitops-lab gate run --from {src} --to {dst} --version {version}` "
            "shows the details; nothing was changed",
        results=results,
        version=version,
    )


def run_rollback(
    reporter: Reporter,
    repo_path: Path,
    env: str,
    to: str | None = None,
    after_push: AfterPush | None = None,
) -> ChangeResult:
    """Roll ``env`` back. No gates run: rolling back must always be possible."""
    result = repo.rollback(
        repo_path, env, to,
        on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
    )
    if result.changed and after_push:
        after_push(result, reporter)
    return result

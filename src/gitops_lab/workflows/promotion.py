"""Promote and roll back: gate, change Git, push, then (optionally) wait for the engine.

A promotion first validates its input and catches up with the remote, once,
then runs the validation gates gates.yaml requires for the destination. If any
gate fails, it stops with GateFailed (exit code 4) before touching the working
copy. Otherwise every verdict goes into the promotion commit's trailers
(``Gate-Model-Eval: pass (accuracy 0.8276 >= 0.65)``).

Rollback runs no gates: rolling back must always be possible.

Given an opened environment and a deadline, both then converge: they ask the
engine to reconcile and wait until the environment serves the pushed commit.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from gitops_lab.adapters import repo
from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.identity import git_user
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.adapters.repo.promotion import ChangeResult, check_promotion, commit_promotion
from gitops_lab.errors import GateFailed, UsageError
from gitops_lab.gates import GateResult, GatesConfig, check_gate_names, gate_trailers, load_config
from gitops_lab.gates.runner import advice, judge
from gitops_lab.kube.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.converge import converge_change
from gitops_lab.workflows.environment import LabEnvironment


def run_promotion(
    reporter: Reporter,
    repo_path: Path,
    src: str,
    dst: str,
    version: str | None = None,
    extra_trailers: list[tuple[str, str]] | None = None,
    environment: LabEnvironment | None = None,
    deadline: Deadline | None = None,
    skip_gates: Collection[str] = (),
) -> ChangeResult:
    """Gate and promote ``version`` (default: ``src``'s) from ``src`` to ``dst``.

    ``skip_gates`` names required gates not to run; gates.yaml's ``skippable``
    must allow each, and each is recorded as ``Gate-<Name>: skipped by <user>``.
    With ``environment`` (and ``deadline``), waits until ``dst`` serves the pushed commit.
    """
    git, layout = Git(repo_path), RepoLayout(repo_path)
    # The same checks as repo.promote: bad input fails the same way whether or not gates would run.
    check_promotion(git, layout, src, dst, version)
    _check_skips(load_config(repo_path), dst, skip_gates)
    publish.catch_up(git)
    # gates.yaml may have changed on the remote: check again after catching up.
    config = load_config(repo_path)
    _check_skips(config, dst, skip_gates)
    target = layout.check_version(version or layout.model_version(src))

    trailers: list[tuple[str, str]] = []
    if layout.model_version(dst) != target:
        results = judge(
            repo_path, config, src, dst, target, config.required_for(dst), skip=skip_gates, skipped_by=git_user(git)
        )
        failed = [r for r in results if not r.passed]
        if failed:
            raise _refusal(src, dst, target, failed, results)
        trailers = gate_trailers(results)
        if results:
            reporter.info(f"gates for {dst}: " + ", ".join(f"{r.name} {r.verdict}" for r in results))

    # The exact version the gates judged, so a change to src meanwhile cannot slip through.
    result = commit_promotion(
        git,
        layout,
        src,
        dst,
        target,
        extra_trailers=[*trailers, *(extra_trailers or [])],
        on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
    )
    _converge(environment, deadline, result, reporter)
    return result


def _converge(
    environment: LabEnvironment | None, deadline: Deadline | None, result: ChangeResult, reporter: Reporter
) -> None:
    if environment is None:
        return
    if deadline is None:
        raise ValueError("a wait for an environment needs the command's deadline")
    converge_change(environment, result, deadline, reporter)


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
            fix="record an approval with `gitops-lab approve`"
            if "approval" in locked
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
    environment: LabEnvironment | None = None,
    deadline: Deadline | None = None,
) -> ChangeResult:
    """Roll ``env`` back. No gates run: rolling back must always be possible.

    With ``environment`` (and ``deadline``), waits until ``env`` serves the pushed commit.
    """
    result = repo.rollback(
        repo_path,
        env,
        to,
        on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
    )
    _converge(environment, deadline, result, reporter)
    return result

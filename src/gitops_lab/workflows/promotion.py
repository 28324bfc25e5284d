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
from gitops_lab.adapters.repo.layout import BRANCH, RepoLayout
from gitops_lab.adapters.repo.promotion import ChangeResult, check_promotion, commit_promotion, noted
from gitops_lab.errors import GateFailed, UsageError
from gitops_lab.gates import GateResult, GatesConfig, check_gate_names, gate_trailers, load_config
from gitops_lab.gates.runner import advice
from gitops_lab.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.workflows import pull_request
from gitops_lab.workflows.converge import converge_change
from gitops_lab.workflows.environment import LabEnvironment
from gitops_lab.workflows.gate_reuse import judge_reusing


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
    forge: pull_request.LabForge | None = None,
    merge: bool = False,
    rerun_gates: bool = False,
) -> ChangeResult:
    """Gate and promote ``version`` (default: ``src``'s) from ``src`` to ``dst``.

    ``skip_gates`` names required gates not to run; gates.yaml's ``skippable``
    must allow each, and each is recorded as ``Gate-<Name>: skipped by <user>``.
    A gate that already passed on the same inputs is not run again (workflows/gate_reuse.py);
    ``rerun_gates`` runs every gate.
    With ``environment`` (and ``deadline``), waits until ``dst`` serves the pushed commit.
    With ``forge``, a destination that needs an approval is promoted by pull
    request (workflows/pull_request.py): opened, then merged once approved (on a
    re-run; with ``merge``, a missing approval is an error rather than a wait).
    """
    git, layout = Git(repo_path), RepoLayout(repo_path)
    # The same checks as repo.promote: bad input fails the same way whether or not gates would run.
    check_promotion(git, layout, src, dst, version)
    _check_skips(load_config(repo_path), dst, skip_gates)
    recovered = publish.catch_up(git)
    # gates.yaml may have changed on the remote: check again after catching up.
    config = load_config(repo_path)
    _check_skips(config, dst, skip_gates)
    target = layout.check_version(version or layout.model_version(src))
    by_review = forge is not None and pull_request.needs_review(config.required_for(dst))
    current = layout.model_version(dst)
    branch = pull_request.branch_for(dst, target)
    if forge is not None and by_review and current != target:
        opened = forge.open_pull_request(branch)
        if opened is not None:
            # Its head carries the gates' verdicts already: a re-run adds no second commit.
            if merge or pull_request.approved(forge, opened):
                result = pull_request.merge(forge, git, opened, dst, target, current)
                _converge(environment, deadline, result, reporter)
                return result
            change = ChangeResult("promote", dst, target, current, None, False, "")
            return pull_request.waiting(forge, opened, change, opened=False)

    if forge is not None and by_review and current == target:
        finished = pull_request.finish_merged(forge, git, dst, target)
        if finished is not None:
            _converge(environment, deadline, finished, reporter)
            return finished

    trailers: list[tuple[str, str]] = []
    results: list[GateResult] = []
    if current != target:
        results = judge_reusing(
            repo_path,
            config,
            src,
            dst,
            target,
            # on a forge the approval is the pull request's review, which Gitea's branch rule enforces
            [g for g in config.required_for(dst) if not (by_review and g == pull_request.APPROVAL_GATE)],
            skip=skip_gates,
            skipped_by=git_user(git),
            deadline=deadline,
            rerun=rerun_gates,
        )
        failed = [r for r in results if not r.passed]
        if failed:
            raise _refusal(src, dst, target, failed, results)
        trailers = gate_trailers(results)
        if results:
            reporter.info(
                f"gates for {dst}: "
                + ", ".join(
                    f"{r.name} {r.verdict}"
                    + (f" (reused: passed on the same inputs at {r.reused_from})" if r.reused_from else "")
                    for r in results
                )
            )

    def commit_judged(onto: str) -> ChangeResult:
        # The exact version the gates judged, so a change to src meanwhile cannot slip through.
        return commit_promotion(
            git,
            layout,
            src,
            dst,
            target,
            extra_trailers=[*trailers, *(extra_trailers or [])],
            on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
            branch=onto,
        )

    if forge is not None and by_review and current != target:
        tip = pull_request.reusable_branch(git, branch, dst, target)
        if tip is None:
            change = commit_judged(branch)
        else:
            reporter.info(f"reusing {branch} ({tip[:7]}), pushed by an earlier run")
            change = ChangeResult("promote", dst, target, current, tip, True, "")
        opened = pull_request.open_for(forge, change, branch, src, results)
        if merge:
            result = pull_request.merge(
                forge, git, forge.learner.pull_request(forge.owner, forge.name, opened.number), dst, target, current
            )
            _converge(environment, deadline, result, reporter)
            return result
        return noted(pull_request.waiting(forge, opened, change, opened=True), recovered)

    result = noted(commit_judged(BRANCH), recovered)
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
    check_gate_names(skip, config)
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
    forge: pull_request.LabForge | None = None,
) -> ChangeResult:
    """Roll ``env`` back. No gates run: rolling back must always be possible.

    With ``forge``, an environment that needs an approval (whose main Gitea's rule protects) goes back through a
    pull request merged at once (workflows/pull_request.py ``roll_back``).
    With ``environment`` (and ``deadline``), waits until ``env`` serves the pushed commit.
    """

    def on_retry(attempt: int, why: str) -> None:
        reporter.warn(f"push attempt {attempt} rejected: {why}")

    if forge is not None and pull_request.needs_review(load_config(repo_path).required_for(env)):
        result = pull_request.roll_back(forge, repo_path, env, to, on_retry)
        if not result.pushed:
            return result  # nothing merged (nothing to do, or waiting for a review): nothing to wait for
    else:
        result = repo.rollback(repo_path, env, to, on_retry=on_retry)
    _converge(environment, deadline, result, reporter)
    return result

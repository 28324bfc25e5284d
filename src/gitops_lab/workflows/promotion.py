"""Promote and roll back: change Git, push, then (optionally) wait for the engine.

The Git change is quick and validates everything before it touches the working
copy, so bad input fails with one line and no half-done step. The engine steps
(request a reconcile, wait until the environment serves the version) plug in
after the push through ``after_push``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gitops_lab.adapters import repo
from gitops_lab.adapters.repo.promotion import ChangeResult
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
) -> ChangeResult:
    result = repo.promote(
        repo_path, src, dst, version, extra_trailers=extra_trailers,
        on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
    )
    if result.changed and after_push:
        after_push(result, reporter)
    return result


def run_rollback(
    reporter: Reporter,
    repo_path: Path,
    env: str,
    to: str | None = None,
    after_push: AfterPush | None = None,
) -> ChangeResult:
    result = repo.rollback(
        repo_path, env, to,
        on_retry=lambda attempt, why: reporter.warn(f"push attempt {attempt} rejected: {why}"),
    )
    if result.changed and after_push:
        after_push(result, reporter)
    return result

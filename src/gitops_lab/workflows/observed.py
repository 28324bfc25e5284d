"""Looks a lab step may ask for, run as the CLI runs them and recorded as observed: the gates, the history."""

from __future__ import annotations

from typing import Any

from gitops_lab import observations
from gitops_lab.adapters.repo.history import history
from gitops_lab.gates import run_gates
from gitops_lab.workflows import gate_reuse


def gate_run(
    name: str, repo: Any, src: str, dst: str, version: str, only: list[str] | None = None, with_custom: bool = False
) -> list:
    """Run the gates as `gitops-lab gate run` does, and record that it ran (and its passes, for a promotion)."""
    results = run_gates(repo, src, dst, version, only=only, with_custom=with_custom)
    gate_reuse.record(repo, src, dst, version, results)
    observations.record(
        name,
        "gate-run",
        **{"from": src},
        to=dst,
        version=version,
        gates=[r.name for r in results],
        passed=all(r.passed for r in results),
    )
    return results


def read_history(name: str, repo: Any, env: str) -> list:
    """An environment's history, as `gitops-lab history` shows it, recorded as read."""
    entries = history(repo, env)
    observations.record(name, "history", env=env)
    return entries

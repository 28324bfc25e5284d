"""Validation gates: checks a model version must pass before it is promoted.

- ``data-quality``: the training data the artifact records vs the reference dataset;
- ``model-eval``: the evaluation metric vs its threshold, and vs what runs now;
- ``policy``: the rendered destination overlay vs security and hygiene rules;
- ``secret-scan``: gitleaks over the repository's commits and working tree;
- ``vuln-scan``: osv-scanner over the locked dependencies (requirements.lock);
- ``approval``: a recorded approval of the version for the destination
  (recorded and read by adapters/repo/approval.py).

Custom gates, programs declared in gates.yaml's ``custom:``, run beside them
(``custom.py``). Which gates each destination requires, and their thresholds, live in
``gates.yaml`` at the root of the lab repository (docs/gates.md).

The names below load on first use: the CLI imports ``config`` for the gate
names, and `gitops-lab --help` must not pay for every gate's code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitops_lab.lazy import lazy_exports

if TYPE_CHECKING:
    from gitops_lab.gates.config import CONFIG_FILE, GATES, GatesConfig, load_config
    from gitops_lab.gates.result import GateContext, GateResult
    from gitops_lab.gates.runner import check_gate_names, gate_trailers, required_gates, run_gates, trailer_key

_HOMES = {
    "CONFIG_FILE": "config",
    "GATES": "config",
    "GateContext": "result",
    "GateResult": "result",
    "GatesConfig": "config",
    "check_gate_names": "runner",
    "gate_trailers": "runner",
    "load_config": "config",
    "required_gates": "runner",
    "run_gates": "runner",
    "trailer_key": "runner",
}

__all__ = [
    "CONFIG_FILE",
    "GATES",
    "GateContext",
    "GateResult",
    "GatesConfig",
    "check_gate_names",
    "gate_trailers",
    "load_config",
    "required_gates",
    "run_gates",
    "trailer_key",
]

__getattr__ = lazy_exports(__name__, _HOMES)

"""Validation gates: checks a model version must pass before it is promoted.

- ``data-quality``: the training data the artifact records vs the reference dataset;
- ``model-eval``: the evaluation metric vs its threshold, and vs what runs now;
- ``policy``: the rendered destination overlay vs security and hygiene rules;
- ``approval``: a recorded approval of the version for the destination
  (recorded and read by adapters/repo/approval.py).

Which gates each destination requires, and their thresholds, live in
``gates.yaml`` at the root of the lab repository (docs/gates.md).
"""

from gitops_lab.gates.config import CONFIG_FILE, GATES, GatesConfig, load_config
from gitops_lab.gates.result import GateContext, GateResult
from gitops_lab.gates.runner import check_gate_names, gate_trailers, required_gates, run_gates, trailer_key

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

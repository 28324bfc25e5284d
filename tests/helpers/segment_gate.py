"""The team's own segment gate (gates.yaml `custom:`), required for staging, as the custom-gates lab adds it:
v6 is good overall and fails it on cool pumps."""

from __future__ import annotations

from pathlib import Path

import yaml
from helpers.gitutil import git

# What the gate prints when v6 fails it.
V6_FAILS = "temperature_c < 60: accuracy 0.5789 < 0.65"


def require_segment_gate(wc: Path) -> None:
    """Declare the segment gate in ``wc``'s gates.yaml, require it for staging, and commit."""
    gates = yaml.safe_load((wc / "gates.yaml").read_text())
    gates["custom"] = {
        "segment-accuracy": {
            "command": ["{python}", "ci/gates/segment_accuracy.py", "--artifact", "{artifact}"]
            + ["--feature", "temperature_c", "--bands", "60,75", "--min-accuracy", "0.65"],
        }
    }
    gates["required"]["staging"].append("segment-accuracy")
    (wc / "gates.yaml").write_text(yaml.safe_dump(gates, sort_keys=False))
    git(wc, "commit", "-qam", "Require the segment gate for staging")

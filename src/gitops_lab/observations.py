"""What the learner looked at, for the light checks of observation steps.

Some steps ask the learner to look before acting: run the gates, try a
promotion that gates refuse, read the history, look at `status`, ask the
model server with `verify`. Those commands record that they ran, one JSON line
each, in the environment's state folder; the `observed` assertion asks whether
a matching record was made since the current step began. Nothing else reads them.
Plain records, below the commands that write them: `workflows/observed.py` runs the gates and
reads the history as the CLI does and records it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gitops_lab.errors import GateFailed
from gitops_lab.state import environment_dir

FILE = "observations.jsonl"
#: What is recorded, as `observed` names it, and the facts a check may match (the first one `observe` needs).
COMMANDS = {
    "gate-run": ("to", "version"),
    "promote": ("to", "version"),
    "history": ("env", "version"),
    "status": (),
    "verify": ("env", "version"),
}
#: The step's start time, kept in the lab progress marks.
STEP_STARTED = "step_started"


def record(name: str, command: str, **facts: Any) -> None:
    """Append one record; a state folder that cannot be written loses it silently (it is only a hint)."""
    path = environment_dir(name) / FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"at": time.time(), "command": command, **facts}, sort_keys=True) + "\n")
    except OSError:
        pass


def matching(name: str, commands: list[str], since: float, **facts: Any) -> list[dict[str, Any]]:
    """Records of any of ``commands`` made at or after ``since`` whose facts equal ``facts`` (None: any)."""
    path = environment_dir(name) / FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):  # missing, unreadable or not UTF-8: only a hint, so none
        return []
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if (
            entry.get("command") in commands
            and entry.get("at", 0) >= since
            and all(value is None or entry.get(key) == value for key, value in facts.items())
        ):
            found.append(entry)
    return found


def refused_promotion(name: str, src: str, dst: str, refused: GateFailed) -> None:
    """Record a promotion the gates refused: trying it is an observation too."""
    record(
        name,
        "promote",
        **{"from": src},
        to=dst,
        version=refused.version,
        refused=[r.name for r in refused.results if not r.passed],
    )


def status_seen(name: str, reports: list) -> None:
    """Record a look at `gitops-lab status`: which environments it showed as not matching Git."""
    record(name, "status", differ=[r.environment for r in reports if not r.ok])


def verified(name: str, report: Any) -> None:
    """Record a `gitops-lab verify` of the cluster: the model server answered /version and /predict."""
    answered = next((c.passed for c in report.checks if c.name == "version"), False)
    record(name, "verify", env=report.environment, version=report.version if answered else None, passed=report.passed)

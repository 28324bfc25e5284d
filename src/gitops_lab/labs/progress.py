"""A lab environment's progress: labs.json in its state folder holds the active lab and, per lab, the
current step, the completed steps, when it started and the step's marks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.errors import UsageError
from gitops_lab.state import environment_dir, write_private_json
from gitops_lab.textfiles import load_json_object


@dataclass
class LabProgress:
    step: int = 0
    completed: list[str] = field(default_factory=list)
    started_at: str = ""
    finished: bool = False
    marks: dict[str, Any] = field(default_factory=dict)


class ProgressStore:
    """labs.json in the environment's state folder: the active lab and each lab's progress."""

    def __init__(self, name: str):
        self.path = environment_dir(name) / "labs.json"
        self.active, self.labs = read_progress(self.path)

    def get(self, lab_id: str) -> LabProgress | None:
        return self.labs.get(lab_id)

    def save(self) -> None:
        write_private_json(
            self.path, {"active": self.active, "labs": {k: asdict(v) for k, v in sorted(self.labs.items())}}, mode=0o644
        )


def read_progress(path: Path) -> tuple[str | None, dict[str, LabProgress]]:
    """(active lab, progress per lab) from labs.json; UsageError naming the file when it is damaged."""
    fix = f"delete it (`rm {path}`; the labs' progress starts over), then run `gitops-lab lab start ID`"
    try:
        data = load_json_object(path, "lab progress file", fix)
    except FileNotFoundError:
        return None, {}
    active, labs = data.get("active"), data.get("labs")
    labs = {} if labs is None else labs
    problems = [] if active is None or isinstance(active, str) else ["active is not a lab id"]
    if not isinstance(labs, dict):
        problems.append("labs is not an object")
        labs = {}
    progress: dict[str, LabProgress] = {}
    for lab_id, value in labs.items():
        try:
            progress[lab_id] = _progress_from(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"labs.{lab_id}: {exc}")
    if problems:
        raise UsageError(f"the lab progress file {path} is damaged: {'; '.join(problems)}", fix=fix)
    return active, progress


def _progress_from(value: Any) -> LabProgress:
    if not isinstance(value, dict):
        raise TypeError("not an object")
    progress = LabProgress(**value)  # unknown keys raise TypeError
    expected = {"step": int, "completed": list, "started_at": str, "finished": bool, "marks": dict}
    wrong = [key for key, kind in expected.items() if not isinstance(getattr(progress, key), kind)]
    if wrong or isinstance(progress.step, bool) or progress.step < 0:
        raise ValueError(f"{', '.join(wrong) or 'step'} of the wrong type")
    return progress

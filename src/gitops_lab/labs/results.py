"""What the lab commands return, as data and as JSON: a check's report (each step's state), a reset's
result, and the report of `lab test` (one case per step and reset, which junit.py writes as XML)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepState:
    id: str
    title: str
    status: str  # done, passed, failed, pending
    message: str = ""
    hints: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CheckReport:
    lab: str
    title: str
    steps: list[StepState]
    current: str | None
    passed: bool
    finished: bool
    next_instructions: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "title": self.title,
            "current": self.current,
            "passed": self.passed,
            "finished": self.finished,
            "steps": [asdict(s) for s in self.steps],
        }


#: How a case the run's deadline never reached begins its message.
NOT_RUN_IN_TIME = "not run: the deadline"


@dataclass
class TestCase:
    lab: str
    step: str
    status: str = "passed"  # passed, failed, skipped, timed-out (the run's deadline passed during it)
    message: str = ""
    seconds: float = 0.0


@dataclass
class TestReport:
    engine: str | None
    cases: list[TestCase] = field(default_factory=list)
    #: Where the run's one deadline (`lab test --timeout`) passed, e.g. "during good/scale-dev"; None: it held.
    deadline_passed: str | None = None
    #: The deadline the user gave, as people say it ("30m00s"), when it passed.
    deadline: str | None = None

    @property
    def passed(self) -> bool:
        return self.deadline_passed is None and all(c.status not in ("failed", "timed-out") for c in self.cases)

    def failures(self) -> list[TestCase]:
        return [c for c in self.cases if c.status == "failed"]

    def not_run(self) -> list[TestCase]:
        """The cases the deadline left out: the one it cut short and those it never reached."""
        return [c for c in self.cases if c.status == "timed-out" or c.message.startswith(NOT_RUN_IN_TIME)]

    def to_dict(self) -> dict[str, Any]:
        labs: dict[str, list[dict[str, Any]]] = {}
        for case in self.cases:
            labs.setdefault(case.lab, []).append(asdict(case))
        return {
            "engine": self.engine,
            "passed": self.passed,
            "deadline_passed": self.deadline_passed,
            "labs": [
                {"lab": k, "passed": all(c["status"] not in ("failed", "timed-out") for c in v), "steps": v}
                for k, v in labs.items()
            ],
        }


@dataclass
class ResetResult:
    lab: str
    commit: str
    backup_ref: str
    saved_uncommitted: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

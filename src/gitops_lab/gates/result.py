"""What a gate returns, and what it is given."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class GateResult:
    """One gate's verdict on one candidate version for one destination.

    ``summary`` is one short line (it goes into the promotion commit's trailer);
    ``details`` lists every check the gate made, each starting with ``pass:``,
    ``warn:`` or ``fail:``. ``fix`` is what to do about a failure when the
    gate knows better than the runner's advice (custom gates say it).
    """

    name: str
    passed: bool
    summary: str
    details: list[str] = field(default_factory=list)
    skipped: bool = False
    fix: str = ""
    reused_from: str = ""  # when the verdict was recorded, if it was reused rather than run (workflows/gate_reuse.py)

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "skipped"
        return "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "verdict": self.verdict}
        if not self.fix:
            del data["fix"]
        if not self.reused_from:
            del data["reused_from"]
        return data


@dataclass
class GateContext:
    """Everything a gate may look at: the working copy and the promotion asked for."""

    root: Path
    src: str
    dst: str
    version: str
    current: str  # the version ``dst`` runs now
    settings: dict[str, Any]  # this gate's section of gates.yaml


def check_line(ok: bool, text: str) -> str:
    return f"{'pass' if ok else 'fail'}: {text}"


def failures(details: list[str]) -> list[str]:
    return [line.removeprefix("fail: ") for line in details if line.startswith("fail: ")]

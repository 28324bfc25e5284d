"""One stage's checks as JUnit XML, the format both GitHub and GitLab show as test reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET


@dataclass
class Check:
    """One check of a stage: passed, failed (with the reason) or skipped (with the reason)."""

    name: str
    status: str  # "passed", "failed" or "skipped"
    message: str = ""


def verdict(checks: list[Check]) -> str:
    """A stage fails when a check failed; it is skipped only when every check was skipped."""
    if any(c.status == "failed" for c in checks):
        return "fail"
    if checks and all(c.status == "skipped" for c in checks):
        return "skipped"
    return "pass"


def write_junit(stage: str, checks: list[Check], path: Path) -> Path:
    suite = ET.Element(
        "testsuite",
        name=f"pipeline.{stage}",
        tests=str(len(checks)),
        failures=str(sum(c.status == "failed" for c in checks)),
        skipped=str(sum(c.status == "skipped" for c in checks)),
    )
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=f"pipeline.{stage}", name=check.name)
        if check.status == "failed":
            ET.SubElement(case, "failure", message=check.message[:500]).text = check.message
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.message)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path

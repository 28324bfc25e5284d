"""JUnit XML for `lab test --junit FILE`: one testcase per lab step, plus each lab's reset. A step the run's
deadline cut short is an error; the steps it never reached are skipped, their message naming the deadline."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from gitops_lab.labs.results import TestReport


def write_junit(report: TestReport, path: str | Path) -> Path:
    """Write the report as a JUnit XML file CI systems read; every step is a testcase."""
    suites = ET.Element("testsuites", name="gitops-lab lab test")
    by_lab: dict[str, list] = {}
    for case in report.cases:
        by_lab.setdefault(case.lab, []).append(case)
    for lab, cases in by_lab.items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"labs.{lab}",
            tests=str(len(cases)),
            failures=str(sum(c.status == "failed" for c in cases)),
            errors=str(sum(c.status == "timed-out" for c in cases)),
            skipped=str(sum(c.status == "skipped" for c in cases)),
            time=f"{sum(c.seconds for c in cases):.3f}",
        )
        if report.engine:
            props = ET.SubElement(suite, "properties")
            ET.SubElement(props, "property", name="engine", value=report.engine)
        for case in cases:
            element = ET.SubElement(
                suite, "testcase", classname=f"labs.{lab}", name=case.step, time=f"{case.seconds:.3f}"
            )
            if case.status == "failed":
                failure = ET.SubElement(element, "failure", message=case.message[:500], type="LabStepFailed")
                failure.text = case.message
            elif case.status == "timed-out":  # not the lab's failure: the run's deadline cut the step short
                error = ET.SubElement(element, "error", message=case.message[:500], type="DeadlinePassed")
                error.text = case.message
            elif case.status == "skipped":
                ET.SubElement(element, "skipped", message=case.message)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path

"""pytest hooks for the kind bed: skip `kind` tests that cannot run, say at the end whether they ran."""

from __future__ import annotations

import pytest

from kindbed.fixtures import missing_reason

_counts = {"passed": 0, "failed": 0, "skipped": 0}
_skip_reasons: set[str] = set()


def pytest_collection_modifyitems(config, items):
    marked = [i for i in items if i.get_closest_marker("kind")]
    reason = missing_reason() if marked else None
    if reason:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_logreport(report):
    if "kind" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped:
            _counts["skipped"] += 1
            if isinstance(report.longrepr, tuple):
                _skip_reasons.add(str(report.longrepr[2]).removeprefix("Skipped: "))
        elif report.failed:
            _counts["failed"] += 1
        else:
            _counts["passed"] += 1
    elif report.when == "teardown" and report.failed:
        _counts["failed"] += 1


def pytest_terminal_summary(terminalreporter):
    c = _counts
    ran = c["passed"] + c["failed"]
    if ran:
        line = f"KIND E2E: RAN {ran} test(s): {c['passed']} passed, {c['failed']} failed"
        line += f", {c['skipped']} skipped" if c["skipped"] else ""
    elif c["skipped"]:
        line = f"KIND E2E: NOT RUN ({c['skipped']} skipped: {'; '.join(sorted(_skip_reasons)) or 'skipped'})"
    else:
        line = "KIND E2E: NOT RUN (no kind tests selected)"
    terminalreporter.write_line(line)

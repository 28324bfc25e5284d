"""pytest hooks for the testbed, imported by tests/conftest.py."""

from __future__ import annotations

import pytest

from .fixtures import _SESSION, log_tails, missing_reason

_counts = {"passed": 0, "failed": 0, "skipped": 0}
_skip_reasons: set[str] = set()


def pytest_collection_modifyitems(config, items):
    marked = [i for i in items if i.get_closest_marker("testbed")]
    if not marked:
        return
    reason = missing_reason()
    if reason:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and item.get_closest_marker("testbed"):
        tails = log_tails()
        if tails:
            rep.sections.append(("testbed logs (tails)", tails))


def pytest_runtest_logreport(report):
    if "testbed" not in report.keywords:
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
    tr = terminalreporter
    if ran:
        tr.write_line(f"TESTBED E2E: RAN {ran} test(s): {c['passed']} passed, {c['failed']} failed"
                      f"{', ' + str(c['skipped']) + ' skipped' if c['skipped'] else ''}")
    elif c["skipped"]:
        why = "; ".join(sorted(_skip_reasons)) or "skipped"
        tr.write_line(f"TESTBED E2E: NOT RUN ({c['skipped']} skipped): {why}")
    else:
        tr.write_line("TESTBED E2E: NOT RUN (no testbed tests selected)")
    rss = _SESSION.get("rss") or {}
    if rss:
        mib = {k: v / 2**20 for k, v in rss.items()}
        parts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(mib.items(), key=lambda kv: -kv[1]))
        tr.write_line(f"TESTBED memory (RSS at teardown): {sum(mib.values()):.0f} MiB: {parts}")
    if _SESSION.get("keep_message"):
        tr.write_line("TESTBED " + _SESSION["keep_message"].rstrip())
    wd = _SESSION.get("workdir")
    if wd:
        tr.write_line(f"TESTBED logs: {wd}/logs")

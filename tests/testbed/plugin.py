"""pytest hooks for the testbed, registered by tests/conftest.py's pytest_plugins."""

from __future__ import annotations

import pytest

from helpers.e2e_counts import E2ECounts

from .binaries import missing_reason, needed_by
from .fixtures import SESSION
from .processes import log_tails

_counts = E2ECounts("testbed", "TESTBED E2E")


def pytest_collection_modifyitems(config, items):
    marked = [i for i in items if i.get_closest_marker("testbed")]
    if not marked:
        return
    reasons: dict[object, str | None] = {}
    for item in marked:
        only = needed_by(getattr(item, "fixturenames", ()))
        if only not in reasons:
            reasons[only] = missing_reason(only)
        if reasons[only]:
            item.add_marker(pytest.mark.skip(reason=reasons[only]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and item.get_closest_marker("testbed"):
        tails = log_tails()
        if tails:
            rep.sections.append(("testbed logs (tails)", tails))


def pytest_runtest_logreport(report):
    _counts.record(report)


# Under pytest-xdist the testbed's session lives in a worker: its figures come back to the
# controller, which prints the closing lines, through xdist's workeroutput.
_SESSION_FIGURES = ("rss", "keep_message", "workdir")


def _plain(value):
    """What execnet can carry: paths as text, numbers, text and dicts of them as they are."""
    return str(value) if hasattr(value, "__fspath__") else value


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["testbed_session"] = {k: _plain(SESSION[k]) for k in _SESSION_FIGURES if SESSION.get(k)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    SESSION.update(getattr(node, "workeroutput", {}).get("testbed_session", {}))


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    tr.write_line(_counts.line())
    rss = SESSION.get("rss") or {}
    if rss:
        mib = {k: v / 2**20 for k, v in rss.items()}
        parts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(mib.items(), key=lambda kv: -kv[1]))
        tr.write_line(f"TESTBED memory (RSS at teardown): {sum(mib.values()):.0f} MiB: {parts}")
    if SESSION.get("keep_message"):
        tr.write_line("TESTBED " + SESSION["keep_message"].rstrip())
    wd = SESSION.get("workdir")
    if wd:
        tr.write_line(f"TESTBED logs: {wd}/logs")

"""pytest hooks for the kind bed: skip `kind` tests that cannot run, say at the end whether they ran."""

from __future__ import annotations

import pytest

from helpers.e2e_counts import E2ECounts

from kindbed.fixtures import missing_reason

_counts = E2ECounts("kind", "KIND E2E")


def pytest_collection_modifyitems(config, items):
    marked = [i for i in items if i.get_closest_marker("kind")]
    reason = missing_reason() if marked else None
    if reason:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_logreport(report):
    _counts.record(report)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(_counts.line())

"""The closing line of the CI-template tests (tests/ci_templates/, marker ``ci_templates``).

Without act, actionlint or gitlab-ci-local those tests skip; the line says so, so a run
without the tools never looks complete.
"""

from __future__ import annotations

from helpers.e2e_counts import E2ECounts

_counts = E2ECounts("ci_templates", "CI TEMPLATES E2E")


def pytest_runtest_logreport(report):
    _counts.record(report)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(_counts.line())

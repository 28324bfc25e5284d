"""What the test beds' closing lines count: the tests of one marker that ran, passed, failed or were skipped."""

from __future__ import annotations


class E2ECounts:
    """Counts the reports of tests marked ``marker``; ``line()`` is the plain closing line CI reads."""

    def __init__(self, marker: str, label: str):
        self.marker, self.label = marker, label
        self.passed = self.failed = self.skipped = 0
        self.skip_reasons: set[str] = set()

    def record(self, report) -> None:
        if self.marker not in report.keywords:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.skipped:
                self.skipped += 1
                if isinstance(report.longrepr, tuple):
                    self.skip_reasons.add(str(report.longrepr[2]).removeprefix("Skipped: "))
            elif report.failed:
                self.failed += 1
            else:
                self.passed += 1
        elif report.when == "teardown" and report.failed:
            self.failed += 1

    def line(self) -> str:
        ran = self.passed + self.failed
        if ran:
            skipped = f", {self.skipped} skipped" if self.skipped else ""
            return f"{self.label}: RAN {ran} test(s): {self.passed} passed, {self.failed} failed{skipped}"
        if self.skipped:
            why = "; ".join(sorted(self.skip_reasons)) or "skipped"
            return f"{self.label}: NOT RUN ({self.skipped} skipped): {why}"
        return f"{self.label}: NOT RUN (no {self.marker} tests selected)"

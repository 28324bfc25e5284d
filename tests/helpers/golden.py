"""Golden files of what commands print, under tests/testdata/golden/.

Rewrite them with ``pytest --update-goldens`` (or GITOPS_LAB_UPDATE_GOLDENS=1),
then read the diff before committing it, as flux2 does. What changes from run
to run (commit ids, dates, loopback ports, how long a step took, a measured
latency, the test's temporary folder) is replaced in one place, ``normalise``,
so a golden holds only what the command decides.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "testdata" / "golden"
UPDATE_ENV = "GITOPS_LAB_UPDATE_GOLDENS"

# Longest first: a full id, then a short one standing alone (git's 7 to 12 hex digits).
_VOLATILE = [
    (re.compile(r"\b[0-9a-f]{40}\b"), "<sha>"),
    (re.compile(r"\b[0-9a-f]{7,12}\b"), "<short-sha>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)?"), "<date>"),
    # A server a test started on a free port.
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d+\b"), r"\1:<port>"),
    # A finished step's duration, at the end of its line: "(0.4s)", "(1m05s)" (reporter._duration).
    (re.compile(r"\((\d+\.\d+s|\d+m\d{2}s)\)$", re.MULTILINE), "(<duration>)"),
    # verify's measured latency: "p95 2.4 ms", "p95 of 45 /predict requests 0.0024s"; its limit stays.
    (re.compile(r"\b(p95 (?:of \d+ \S+ requests )?)\d+\.\d+( ms|s)\b"), r"\1<latency>\2"),
]


def normalise(text: str, tmp_path: Path | None = None) -> str:
    """The output with its volatile parts replaced: the test's folder, then each of _VOLATILE."""
    if tmp_path is not None:
        text = text.replace(str(tmp_path), "<tmp>")
    for pattern, stand_in in _VOLATILE:
        text = pattern.sub(stand_in, text)
    return text


def updating() -> bool:
    return os.environ.get(UPDATE_ENV) == "1"


def assert_golden(name: str, text: str, tmp_path: Path | None = None) -> None:
    """``text`` (normalised) equals tests/testdata/golden/<name>; with updating(), it becomes it."""
    path = GOLDEN_DIR / name
    got = normalise(text, tmp_path)
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    assert path.is_file(), f"no golden file {path}: run pytest --update-goldens and review it"
    want = path.read_text(encoding="utf-8")
    if got != want:
        import difflib

        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "golden", "got"))
        raise AssertionError(f"{name} differs from its golden file (pytest --update-goldens rewrites it):\n{diff}")


# Only a bound on how long an engine may take to settle after `up` or a reset; nothing asserts on time.
SETTLE = 120


def settled(read: Callable[[], tuple], ok: Callable[[tuple], bool]) -> tuple:
    """``read()`` again until ``ok`` of it, under SETTLE; what it read last (a golden of a settled lab)."""
    deadline = time.monotonic() + SETTLE
    while True:
        got = read()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(2)

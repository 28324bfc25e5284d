"""Where things are, for tests in any folder under tests/: the repository, tests/ and its testdata."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
TESTDATA = TESTS / "testdata"

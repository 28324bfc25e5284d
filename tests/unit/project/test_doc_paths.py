"""Every test file the docs name exists: a moved or renamed test leaves no stale path in the README, docs/ or
the beds' READMEs (a reader follows those paths to see what is tested)."""

from __future__ import annotations

import re

from helpers.paths import REPO

TEST_PATH = re.compile(r"tests/[\w./-]+?\.(?:py|cjs)\b")


def _documents():
    yield REPO / "README.md"
    yield from sorted((REPO / "docs").rglob("*.md"))
    yield from sorted((REPO / "tests").rglob("README.md"))
    yield from sorted((REPO / "labs").rglob("*.md"))


def test_every_test_path_the_docs_name_exists():
    missing = [
        f"{doc.relative_to(REPO)}: {path}"
        for doc in _documents()
        for path in sorted(set(TEST_PATH.findall(doc.read_text(encoding="utf-8"))))
        if not (REPO / path).exists()
    ]
    assert missing == []


def test_the_check_finds_a_stale_path():
    assert TEST_PATH.findall("see `tests/test_gone.py::test_x` and tests/e2e/kind/x.cjs") == [
        "tests/test_gone.py",
        "tests/e2e/kind/x.cjs",
    ]

"""Tests share code only through tests/helpers/: no test module is imported by another test, a bed or
a benchmark. A test module imported as a library runs its fixtures' imports in its importer, breaks
when it is renamed or moved, and hides which of its functions are shared."""

from __future__ import annotations

import ast

from helpers.paths import REPO

ROOT = REPO
TESTS = ROOT / "tests"


def _test_modules() -> set[str]:
    """The names a test module can be imported by: the stem of every tests/**/test_*.py."""
    return {path.stem for path in TESTS.rglob("test_*.py")}


def _imports_of_tests(name: str, source: str, test_modules: set[str]) -> list[str]:
    """Each import in ``source`` (at the top or inside a function) that reaches a test module, as
    ``name:line statement``: ``import test_x``, ``from test_x import f``, ``from e2e.test_x import f``,
    ``from . import test_x``."""
    lines = source.splitlines()
    found = []
    for node in sorted(ast.walk(ast.parse(source)), key=lambda node: getattr(node, "lineno", 0)):
        if isinstance(node, ast.Import):
            parts = [part for alias in node.names for part in alias.name.split(".")]
        elif isinstance(node, ast.ImportFrom):
            parts = [*(node.module or "").split("."), *(alias.name for alias in node.names)]
        else:
            continue
        if test_modules & set(parts):
            found.append(f"{name}:{node.lineno} {lines[node.lineno - 1].strip()}")
    return found


def test_no_test_module_is_imported_by_another():
    test_modules = _test_modules()
    found = []
    for path in sorted([*TESTS.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]):
        name = str(path.relative_to(ROOT))
        found += _imports_of_tests(name, path.read_text(encoding="utf-8"), test_modules)
    assert found == [], "share it through tests/helpers/ instead"


def test_an_import_of_a_test_module_is_named():
    """The check itself: each way of importing a test module is found, and a helper's import is not."""
    test_modules = {"test_gitserver", "test_evidence_report"}
    source = "\n".join(
        [
            "from test_gitserver import RunningServer",
            "import test_evidence_report",
            "from helpers.gitutil import git",
            "def bench():",
            "    from tests.test_gitserver import free_port",
            "from . import test_evidence_report as report",
        ]
    )
    assert _imports_of_tests("m.py", source, test_modules) == [
        "m.py:1 from test_gitserver import RunningServer",
        "m.py:2 import test_evidence_report",
        "m.py:5 from tests.test_gitserver import free_port",
        "m.py:6 from . import test_evidence_report as report",
    ]

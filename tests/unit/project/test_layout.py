"""The test folders say what a test needs, and tests/conftest.py marks each test from its folder:

- tests/unit/: nothing but Python, git and the tools a test skips without (by the product's layers);
- tests/e2e/testbed/: the testbed (marker ``testbed``); tests/e2e/kind/: the kind bed (``kind``);
- tests/ci_templates/: act, actionlint, gitlab-ci-local (``ci_templates``); tests/dockerd/: a Docker engine (``docker``).

So a test that asks for a bed (its fixtures or its marker) outside the bed's folder would run
unmarked: never skipped when the bed is missing, and not counted in the bed's closing line."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers.paths import TESTS

# folder (under tests/) -> what a test there may ask for: the bed's marker and the fixtures of its plugin
BEDS = {
    "e2e/testbed": ("testbed", TESTS / "testbed" / "fixtures.py"),
    "e2e/kind": ("kind", TESTS / "kindbed" / "fixtures.py"),
    "ci_templates": ("ci_templates", None),
    "dockerd": ("docker", None),
}
FOLDERS = ("unit", *BEDS)


def _fixtures(path: Path | None) -> set[str]:
    """The names of the functions decorated as pytest fixtures in ``path``."""
    if path is None:
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list)
    }


def _asks_for(source: str, marker: str, fixtures: set[str]) -> list[str]:
    """Where ``source`` asks for a bed: ``pytest.mark.MARKER``, or one of ``fixtures`` as a parameter of
    a test or fixture or as a string (``request.getfixturevalue("testbed_git")``), as ``line: name``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == marker and ast.unparse(node.value).endswith("mark"):
            found.append(f"{node.lineno}: mark.{marker}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [f"{node.lineno}: {a.arg}" for a in node.args.args if a.arg in fixtures]
        elif isinstance(node, ast.Constant) and node.value in fixtures:
            found.append(f"{node.lineno}: {node.value!r}")
    return sorted(found, key=lambda where: int(where.split(":")[0]))


def _folder(path: Path) -> str:
    rel = path.relative_to(TESTS).as_posix()
    return next((folder for folder in FOLDERS if rel.startswith(folder + "/")), rel)


def test_every_test_module_sits_in_a_folder_that_says_what_it_needs():
    outside = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if _folder(path) not in FOLDERS and not path.is_relative_to(TESTS / "testdata")
    ]
    assert outside == [], "move each to tests/unit/<layer>/ or to the folder of the bed it needs"


def test_no_test_asks_for_a_bed_outside_the_beds_folder():
    misplaced = []
    for bed, (marker, fixtures_file) in BEDS.items():
        fixtures = _fixtures(fixtures_file)
        for path in sorted(TESTS.rglob("*.py")):
            if _folder(path) not in FOLDERS or _folder(path) == bed or path == Path(__file__).resolve():
                continue  # this file names the beds' fixtures to check the check
            for where in _asks_for(path.read_text(encoding="utf-8"), marker, fixtures):
                misplaced.append(f"{path.relative_to(TESTS)}:{where} (belongs in tests/{bed}/)")
    assert misplaced == []


def test_a_request_for_a_bed_is_found():
    """The check itself: the marker, a fixture as a parameter and by name are each found; another is not."""
    fixtures = _fixtures(TESTS / "testbed" / "fixtures.py")
    assert {"testbed_cluster", "testbed_git", "testbed_gitea"} <= fixtures
    source = "\n".join(
        [
            "@pytest.mark.testbed",
            "def test_a(testbed_cluster): ...",
            "def test_b(request):",
            "    request.getfixturevalue('testbed_git')",
            "def test_c(tmp_path, lab): ...",
        ]
    )
    assert _asks_for(source, "testbed", fixtures) == ["1: mark.testbed", "2: testbed_cluster", "4: 'testbed_git'"]

"""The benchmarks import the test beds' helpers lazily (inside functions), so a helper that
moves breaks a benchmark only when someone runs it. Every name a benchmark takes from this
project's modules, and every attribute it reads of a module it imported, must exist."""

from __future__ import annotations

import ast
import importlib
import sys

import pytest

from helpers.paths import REPO

ROOT = REPO
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))
OURS = ("gitops_lab", "testbed", "kindbed", "testbed_session", "helpers")


def _ours(module: str) -> bool:
    return module.split(".")[0] in OURS


def _references(tree: ast.AST) -> list[tuple[str, str]]:
    """(module, name) for every `from M import name` and every `alias.name` of an imported module."""
    refs: list[tuple[str, str]] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _ours(node.module):
            for alias in node.names:
                refs.append((node.module, alias.name))
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _ours(alias.name):
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            refs.append((aliases[node.value.id], node.attr))
    return refs


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_every_name_a_benchmark_imports_exists(path, monkeypatch):
    for folder in (ROOT / "benchmarks", ROOT / "tests"):
        monkeypatch.syspath_prepend(str(folder))
    missing = []
    for module, name in _references(ast.parse(path.read_text(encoding="utf-8"))):
        try:
            target = importlib.import_module(module)
        except ModuleNotFoundError:
            # "from testbed import engines": the name is a submodule
            parent, _, child = module.rpartition(".")
            target = sys.modules.get(parent) and getattr(sys.modules[parent], child, None)
            if target is None:
                missing.append(f"module {module}")
                continue
        if not hasattr(target, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{module}.{name}")
    assert not missing, f"{path.name} uses names that do not exist: {', '.join(sorted(set(missing)))}"

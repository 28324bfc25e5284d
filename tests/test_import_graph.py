"""The package's imports point down (cli -> workflows -> adapters/gates -> kube) and
form no cycle, counting the imports made inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "gitops_lab").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The gitops_lab modules ``path`` imports, anywhere in it; ``from pkg import sub`` counts as ``pkg.sub``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gitops_lab"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("gitops_lab")}
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start -> ... -> start, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_module_imports_itself_through_others():
    graph = _graph()
    cycles = [" -> ".join(cycle) for name in graph if (cycle := _cycle_from(name, graph))]
    assert cycles == []


def test_lower_layers_never_import_higher_ones():
    higher = {
        "gitops_lab.kube": (
            "gitops_lab.adapters",
            "gitops_lab.gates",
            "gitops_lab.workflows",
            "gitops_lab.labs",
            "gitops_lab.cli",
        ),
        "gitops_lab.adapters": ("gitops_lab.workflows", "gitops_lab.labs", "gitops_lab.cli"),
        "gitops_lab.gates": ("gitops_lab.workflows", "gitops_lab.labs", "gitops_lab.cli"),
        "gitops_lab.workflows": ("gitops_lab.cli",),
        "gitops_lab.labs": ("gitops_lab.cli",),
        "gitops_lab.model": ("gitops_lab.adapters", "gitops_lab.gates", "gitops_lab.workflows", "gitops_lab.cli"),
    }
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for layer, above in higher.items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if target.startswith(above)
    )
    assert upward == []

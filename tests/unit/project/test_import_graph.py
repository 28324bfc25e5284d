"""The package's imports follow the one layer order, the table in the README's "How it is built":
a module imports its own package and the rows below its own, never a row above nor a neighbour on its
own row, and no module imports itself through others (imports made inside functions count too). Every
module sits in one row, so a new package must take its place in the README. Below cli/, an import
inside a function says why (start-up or a cycle). And nothing outside labs/ reaches into the lab
runner's private state, nor, the cli's `lab` commands aside, imports a lab module other than labs/api.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from helpers.paths import REPO

ROOT = REPO
SRC = ROOT / "src"


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


def _layer_table(readme: str) -> list[tuple[str, list[str]]]:
    """The README's layer table, top row first: each layer's name and the packages (``cli/``) and
    modules (``state.py``) in it, as ``gitops_lab`` module names."""
    section = readme.split("\n## How it is built\n", 1)[1].split("\n## ", 1)[0]
    lines = iter(section.splitlines())
    for line in lines:
        if re.match(r"\|\s*layer\s*\|", line):
            break
    else:
        raise AssertionError("README's 'How it is built' has no table whose first column is 'layer'")
    next(lines)  # | --- | --- | --- |
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        units = []
        for name in re.findall(r"`([^`]+)`", cells[1]):
            name = name.removesuffix("/").removesuffix(".py")
            units.append("gitops_lab" if name == "__init__" else "gitops_lab." + name.replace("/", "."))
        rows.append((cells[0], units))
    return rows


def _unit_of(module: str, rank: dict[str, int]) -> str | None:
    """The table's package or module that holds ``module``: the longest one that is it or contains it."""
    holders = [unit for unit in rank if module == unit or (unit != "gitops_lab" and module.startswith(unit + "."))]
    return max(holders, key=len, default=None)


def _layer_problems(readme: str, graph: dict[str, set[str]]) -> list[str]:
    """Where the README's layer table and the code disagree, one line each; none when they agree."""
    rows = _layer_table(readme)
    rank: dict[str, int] = {}
    problems = []
    for row, (_, units) in enumerate(rows):
        for unit in units:
            if unit in rank:
                problems.append(f"README's layer table lists {unit} twice")
            rank[unit] = row
    problems += [f"README's layer table names {unit}, which does not exist" for unit in rank if unit not in graph]
    for module in sorted(graph):
        if _unit_of(module, rank) is None:
            problems.append(f"{module} is in no row of the README's layer table")
    for module, targets in sorted(graph.items()):
        home = _unit_of(module, rank)
        for target in sorted(targets):
            other = _unit_of(target, rank)
            if home is None or other is None or other == home or rank[other] > rank[home]:
                continue
            way = "a neighbour on its row" if rank[other] == rank[home] else "a row above"
            problems.append(f"{module} ({rows[rank[home]][0]}) imports {target} ({rows[rank[other]][0]}): {way}")
    return problems


def test_the_readme_names_every_layer_and_the_code_follows_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layers = [name for name, _ in _layer_table(readme)]
    assert layers[:3] == ["entry", "cli", "classroom"] and layers[-1] == "base"
    assert _layer_problems(readme, _graph()) == []


def test_an_import_against_the_table_is_named():
    """The check itself: a graph with an upward import, a sideways one and a module the table misses
    is refused line by line, so a green run means the table and the code agree."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    real = _graph()
    graph = {name: set(targets) for name, targets in real.items()}
    graph["gitops_lab.kube.wait"].add("gitops_lab.adapters.docker")
    graph["gitops_lab.workflows.up"].add("gitops_lab.assessment.ci_stages")
    graph["gitops_lab.newpackage.thing"] = set()
    already = set(_layer_problems(readme, real))
    assert [problem for problem in _layer_problems(readme, graph) if problem not in already] == [
        "gitops_lab.newpackage.thing is in no row of the README's layer table",
        "gitops_lab.kube.wait (kube) imports gitops_lab.adapters.docker (adapters): a row above",
        "gitops_lab.workflows.up (workflows) imports gitops_lab.assessment.ci_stages (workflows): a neighbour on its row",
    ]


def _unexplained_function_imports(name: str, source: str) -> list[str]:
    """The function-level imports of gitops_lab in ``source`` whose function has no ``# Start-up:`` or
    ``# Cycle:`` comment above them: below cli/ an import hides the graph unless it keeps --help fast
    or breaks a cycle, and then it says which."""
    lines = source.splitlines()
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if not any(imported.startswith("gitops_lab") for imported in names):
                continue
            above = lines[function.lineno - 1 : node.lineno - 1]
            if not any(line.strip().startswith(("# Start-up:", "# Cycle:")) for line in above):
                found.append(f"{name}:{node.lineno} {lines[node.lineno - 1].strip()}")
    return sorted(set(found))


def test_below_the_cli_a_function_level_import_says_why():
    unexplained = []
    for name, path in _modules().items():
        if name == "gitops_lab.cli" or name.startswith("gitops_lab.cli."):
            continue  # the commands import on use so that --help stays fast (tests/unit/cli/test_cli_startup.py)
        unexplained += _unexplained_function_imports(name, path.read_text(encoding="utf-8"))
    assert unexplained == []
    bad = "def f():\n    from gitops_lab.errors import UsageError\n    return UsageError\n"
    assert _unexplained_function_imports("m", bad) == ["m:2 from gitops_lab.errors import UsageError"]
    said = "def f():\n    # Cycle: errors imports m\n    from gitops_lab.errors import UsageError\n"
    assert _unexplained_function_imports("m", said) == []


def _private_names_of_labs() -> set[str]:
    """The private names of labs/: its ``_functions`` and ``_Classes``, and the ``self._state`` and
    ``_field`` attributes of its classes (the runner's opened environment, the context's fetch mark)."""
    names = set()
    for path in (SRC / "gitops_lab" / "labs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def test_only_labs_touches_the_lab_runners_private_state():
    """Code above labs/ (the classroom) drives a runner through labs/api.py, never through its private names."""
    private = _private_names_of_labs()
    assert {"_environment", "_remember"} <= private  # what the classroom used to write and call
    touched = []
    for name, path in _modules().items():
        if name == "gitops_lab.labs" or name.startswith("gitops_lab.labs."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in private
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                touched.append(f"{name}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gitops_lab.labs"):
                touched += [f"{name}:{node.lineno} imports {a.name}" for a in node.names if a.name.startswith("_")]
    assert touched == []


def _lab_imports_past_the_api(graph: dict[str, set[str]]) -> list[str]:
    """Imports of a labs/ module other than labs/api.py from outside labs/. cli/ is the exception: its
    `lab` commands run the runner, `lab test` and its JUnit report themselves; the classroom, and any
    other layer that may import labs/, drives labs only through labs/api.py."""

    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        if not inside(module, "gitops_lab.labs") and not inside(module, "gitops_lab.cli")
        for target in sorted(targets)
        if inside(target, "gitops_lab.labs") and target != "gitops_lab.labs.api"
    ]


def test_above_labs_the_classroom_uses_labs_only_through_its_api():
    graph = _graph()
    assert "gitops_lab.labs.api" in graph["gitops_lab.classroom.reset"]
    assert _lab_imports_past_the_api(graph) == []
    graph["gitops_lab.classroom.reset"] = {*graph["gitops_lab.classroom.reset"], "gitops_lab.labs.actions.doers"}
    assert _lab_imports_past_the_api(graph) == ["gitops_lab.classroom.reset imports gitops_lab.labs.actions.doers"]

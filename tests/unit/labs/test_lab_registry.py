"""The lab action registry, the loader, the authoring guide and dispatch agree.

Each action is registered once (labs/vocabulary.py) with its parameters, its
title and the function that runs it. The loader accepts exactly the
registered names in the phases their kind allows, the authoring guide's
tables document exactly those actions with their parameters, and the lab
runner's dispatch runs the registered function.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.paths import REPO
from gitops_lab.labs.actions.context import CheckResult, LabContext
from gitops_lab.labs.loader import LabFormatError, load_lab
from gitops_lab.labs.runner import evaluate_action, run_action
from gitops_lab.labs.vocabulary import ACTIONS, ActionSpec
from gitops_lab.reporter import Reporter

GUIDE = REPO / "docs" / "authoring-labs.md"
SECTIONS = {"### Actions that change things": "do", "### Assertions": "assert", "### The escape hatch": "any"}
SPECS = list({id(s): s for s in ACTIONS.values()}.values())


def guide_rows() -> dict[str, tuple[str, str]]:
    """action name -> (the kind its section holds, its whole table row), from the guide's three tables."""
    rows: dict[str, tuple[str, str]] = {}
    kind = None
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            kind = next((k for heading, k in SECTIONS.items() if line.startswith(heading)), None)
        found = re.match(r"^\| `([a-z_]+)` \|", line)
        if kind and found:
            assert found.group(1) not in rows, f"{found.group(1)} is documented twice"
            rows[found.group(1)] = (kind, line)
    return rows


def documented_row(spec: ActionSpec) -> str:
    """The guide's row for ``spec``: name, parameters (``?`` when optional), what it does, the example."""
    params = "<br>".join(
        f"`{name}`{'' if p.required else '?'}: {p.form()}" + (f" ({p.doc})" if p.doc else "")
        for name, p in spec.params.items()
    ).replace("|", "\\|")
    cluster = " Needs a cluster." if spec.needs_cluster else ""
    return f"| `{spec.name}` | {params} | {spec.doc}{cluster} Example: `{spec.example}` |"


def test_the_guide_documents_every_registered_action_as_registered():
    rows = guide_rows()
    assert set(rows) == {spec.name for spec in SPECS}
    for spec in SPECS:
        kind, row = rows[spec.name]
        assert kind == spec.kind, f"{spec.name} is documented under the wrong table"
        assert row == documented_row(spec), f"docs/authoring-labs.md's row of {spec.name} differs from the registry"
        for alias in spec.aliases:
            assert f"`{alias}`" in row, f"the guide does not name {alias}, another name of {spec.name}"


def test_every_action_has_what_its_kind_dispatches_to():
    for spec in SPECS:
        runs, checks = spec.kind in ("do", "any"), spec.kind in ("assert", "any")
        assert callable(spec.do) == runs and callable(spec.title) == runs, spec.name
        assert callable(spec.check) == checks, spec.name


def _lab_with(folder: Path, phase: str, line: str):
    folder.mkdir()
    (folder / "01.md").write_text("# Step\n")
    (folder / "checks.py").write_text("def learner_wrote_notes(ctx):\n    return True, 'notes'\n")
    check = line if phase == "check" else "git_version: {env: dev, version: v1}"
    solve = line if phase == "solve" else "restore: {}"
    (folder / "lab.yaml").write_text(
        f"id: {folder.name}\ntitle: T\nsummary: S\nengines: [argocd, flux]\nsteps:\n"
        f"  - id: one\n    title: One\n    instructions: 01.md\n    check:\n      - {check}\n"
        f"    solve:\n      - {solve}\n"
    )
    return load_lab(folder)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_the_loader_accepts_each_name_where_its_kind_belongs_and_resolves_it_to_the_registered_action(name, tmp_path):
    spec = ACTIONS[name]
    line = spec.example.replace(f"{spec.name}:", f"{name}:", 1)
    allowed = "check" if spec.kind == "assert" else "solve"
    [step] = _lab_with(tmp_path / "allowed", allowed, line).steps
    [action] = step.actions(allowed)
    assert action.name == name and action.spec is spec
    if spec.kind != "any":
        refused = "solve" if spec.kind == "assert" else "check"
        with pytest.raises(LabFormatError, match=f"{name!r} is an"):
            _lab_with(tmp_path / "refused", refused, line)
    if spec.title:
        assert spec.title(action.params).strip()


def test_the_loader_refuses_a_name_the_registry_does_not_know(tmp_path):
    with pytest.raises(LabFormatError, match="unknown action 'wait_for_godot'"):
        _lab_with(tmp_path / "lab", "solve", "wait_for_godot: {env: dev}")


def test_dispatch_runs_the_registered_function(tmp_path, monkeypatch):
    """`lab` runs a step's action through the registry: what the registry names is what runs."""
    [step] = _lab_with(tmp_path / "lab", "solve", "python: checks:learner_wrote_notes").steps
    [action] = step.actions("solve")
    ran = []
    monkeypatch.setattr(
        type(action),
        "spec",
        property(
            lambda self: ActionSpec(
                "python",
                "any",
                "",
                do=lambda ctx, p: ran.append(("do", p["function"])),
                title=lambda p: "Running",
                check=lambda ctx, p: CheckResult(True, "checked"),
            )
        ),
    )
    ctx = LabContext(load_lab(tmp_path / "lab"), tmp_path, Reporter(), 10, None)
    run_action(ctx, action)
    assert ran == [("do", "checks:learner_wrote_notes")]
    assert evaluate_action(ctx, action).message == "checked"


def test_a_labs_python_hooks_import_only_the_names_the_guide_promises():
    """A lab's Python module (labs/<id>/*.py, and an instructor's own) imports from gitops_lab.labs.actions,
    which the guide names: every such import in the shipped and test labs takes a name the package keeps for
    hooks, and those are the very objects the runner gives and dispatches."""
    import ast

    import gitops_lab.labs.actions as hook_api
    from gitops_lab.labs.actions.doers import do_commit_file

    root = REPO
    assert "`gitops_lab.labs.actions`" in GUIDE.read_text(encoding="utf-8")
    imported = {}
    for path in [*(root / "labs").glob("*/*.py"), *(root / "tests" / "testdata" / "labs").glob("*/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gitops_lab.labs"):
                for alias in node.names:
                    imported[f"{path.relative_to(root)}: {node.module}.{alias.name}"] = (node.module, alias.name)
    assert imported, "no lab imports from gitops_lab.labs: the hooks' contract is untested"
    outside = [where for where, (module, name) in imported.items() if module != "gitops_lab.labs.actions"]
    unkept = [where for where, (module, name) in imported.items() if name not in hook_api.__all__]
    assert outside == [] and unkept == []
    assert (hook_api.LabContext, hook_api.CheckResult, hook_api.do_commit_file) == (
        LabContext,
        CheckResult,
        do_commit_file,
    )

"""What the platform's templates declare as inputs, and whether a caller's values fit them.

A GitHub reusable workflow declares ``on.workflow_call.inputs`` (type string,
number or boolean; ``required``; ``default``); a GitLab CI/CD component declares
``spec: inputs`` in its header document (type string, number, boolean or array;
an input without ``default`` is required; ``options``). A caller passes values in
``with:`` (GitHub) or ``inputs:`` (GitLab). Nothing here runs anything: the
CI-template lab reads the templates at the tag a caller names and asks these
functions what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

GITHUB = "github"
GITLAB = "gitlab"


@dataclass(frozen=True)
class Input:
    name: str
    type: str = "string"
    required: bool = False
    default: Any = None
    options: tuple[Any, ...] = ()


def github_inputs(workflow: Any) -> dict[str, Input]:
    """The inputs a reusable workflow (parsed YAML) declares under on.workflow_call."""
    if not isinstance(workflow, dict):
        return {}
    # YAML 1.1 reads a bare `on:` key as True.
    on = workflow.get("on", workflow.get(True)) or {}
    call = on.get("workflow_call") if isinstance(on, dict) else None
    declared = (call or {}).get("inputs") if isinstance(call, dict) else None
    return {
        str(name): Input(
            str(name),
            str(spec.get("type", "string")),
            bool(spec.get("required", False)),
            spec.get("default"),
            tuple(spec.get("options") or ()),
        )
        for name, spec in (declared or {}).items()
        if isinstance(spec, dict)
    }


def component_documents(text: str) -> tuple[dict, str]:
    """(header, body): a component's `spec:` document, and its jobs after `---` as YAML text without comments."""
    header_text, sep, body = text.partition("\n---\n")
    if not sep:
        return {}, text
    header = yaml.safe_load(header_text)
    try:
        # Parsed and written again: a commented-out line is no use of an input.
        body = yaml.safe_dump(yaml.safe_load(body), width=1_000_000, sort_keys=False)
    except yaml.YAMLError:
        body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))
    return (header if isinstance(header, dict) else {}), body


def gitlab_inputs(header: Any) -> dict[str, Input]:
    """The inputs a component's header (parsed `spec:` document) declares; without `default` one is required."""
    spec = header.get("spec") if isinstance(header, dict) else None
    declared = spec.get("inputs") if isinstance(spec, dict) else None
    inputs = {}
    for name, item in (declared or {}).items():
        item = item if isinstance(item, dict) else {}
        inputs[str(name)] = Input(
            str(name),
            str(item.get("type", "string")),
            "default" not in item,
            item.get("default"),
            tuple(item.get("options") or ()),
        )
    return inputs


def is_variable(value: Any, kind: str) -> bool:
    """A value the CI system fills in at run time (`${{ vars.X }}`; GitLab `$X`), unknown before."""
    if not isinstance(value, str):
        return False
    return "${{" in value if kind == GITHUB else "$" in value and "$[[" not in value


def _type_problem(value: Any, want: str, kind: str) -> str | None:
    if kind == GITHUB and is_variable(value, kind):
        return None  # an expression: its type is known only when the workflow runs
    if want == "string":
        if isinstance(value, str):
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"is the number {value!r}, and the input is a string: quote it (YAML reads 3.10 as 3.1)"
        return f"is {type(value).__name__} {value!r}, and the input is a string"
    if want == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"is {value!r}, and the input is a number"
    if want == "boolean":
        return None if isinstance(value, bool) else f"is {value!r}, and the input is a boolean (true or false)"
    if want == "array":
        return None if isinstance(value, list) else f"is {value!r}, and the input is an array (a YAML list)"
    return None


def input_problems(given: Any, declared: dict[str, Input], kind: str, where: str, template: str) -> list[str]:
    """Each way ``given`` (a caller's with:/inputs:) does not fit ``declared``; ``template`` names the file and tag."""
    key = "with" if kind == GITHUB else "inputs"
    if given is None:
        given = {}
    if not isinstance(given, dict):
        return [f"{where}: `{key}:` is {type(given).__name__}, not a mapping of input names to values"]
    problems = []
    takes = ", ".join(sorted(declared)) or "none"
    for name, value in given.items():
        spec = declared.get(str(name))
        if spec is None:
            problems.append(
                f"{where} passes the input {name!r}, which {template} does not declare (it takes: {takes}); "
                "remove it, or add it to the platform and release a new tag"
            )
            continue
        problem = _type_problem(value, spec.type, kind)
        if problem:
            problems.append(f"{where}: the input {name!r} {problem} ({template})")
        elif spec.options and not is_variable(value, kind) and value not in spec.options:
            choices = ", ".join(map(str, spec.options))
            problems.append(
                f"{where}: the input {name!r} is {value!r}, not one of its options in {template}: {choices}"
            )
    for name, spec in sorted(declared.items()):
        if spec.required and name not in given:
            problems.append(
                f"{where} does not pass the input {name!r}, which {template} requires: add it under `{key}:`"
            )
    return problems


def used_inputs(text: str, names: set[str], kind: str) -> set[str]:
    """Which of ``names`` the template's jobs reference (`inputs.NAME` in an expression; `$[[ inputs.NAME ]]`)."""
    used = set()
    for name in names:
        escaped = re.escape(name)
        if kind == GITHUB:
            pattern = rf"\$\{{\{{[^}}]*\binputs(\.{escaped}(?![\w-])|\[\s*'{escaped}'\s*\])"
        else:
            pattern = rf"\$\[\[\s*inputs\.{escaped}(?![\w-])"
        if re.search(pattern, text):
            used.add(name)
    return used


def github_body(workflow: Any) -> str:
    """A reusable workflow (parsed YAML) without its `on:` block: where an input is used, not merely declared."""
    if not isinstance(workflow, dict):
        return ""
    rest = {key: value for key, value in workflow.items() if key not in ("on", True)}
    return yaml.safe_dump(rest, width=1_000_000, sort_keys=False)

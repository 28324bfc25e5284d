"""Read a lab folder and validate it, reporting every problem at once.

    labs/<id>/lab.yaml          id, title, summary, engines, order, steps
    labs/<id>/<step>.md         the instructions of each step
    labs/<id>/<module>.py       optional: functions named by `python:` actions

The YAML is composed into nodes (not loaded into plain values) so each problem
names the file and line it is on, and the form that was expected there. A lab
with any problem is refused whole: nothing of it runs.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitops_lab.adapters.engines import ENGINES
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.errors import GitOpsLabError, NotFound, UsageError
from gitops_lab.labs.vocabulary import ACTIONS, ENV_OR_ALL, PHASES, ActionSpec, allowed_in
from gitops_lab.observations import COMMANDS
from gitops_lab.textfiles import read_text, yaml_loader
from gitops_lab.versions import expand_pins

#: A lab.yaml or instructions file is a page or two; anything near this is a mistake.
LAB_FILE_LIMIT = 256 * 1024

LAB_FILE = "lab.yaml"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VERSION = re.compile(r"^v\d+$")
_FUNCTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):([A-Za-z_][A-Za-z0-9_]*)$")
_TOP_KEYS = {
    "id": True,
    "title": True,
    "summary": True,
    "engines": True,
    "order": False,
    "requires": False,
    "steps": True,
}
#: What a lab may require of the environment beyond a cluster: ``running-pods``,
#: model-server pods that really run and answer (kind), not simulated ones;
#: ``osv-scanner``, the vuln-scan gate's scanner (scripts/install-ci-tools);
#: ``forge``, a forge (Gitea) for pull requests, saved in the lab's state.
REQUIREMENTS = ("running-pods", "osv-scanner", "forge")
#: The requirements a learner meets themselves: where one is not met, `lab test` skips the step, saying
#: why, but `lab check` runs the step's check, which fails saying how to meet it (the step is not done).
LEARNER_MEETS = ("forge",)
_STEP_KEYS = {
    "id": True,
    "title": True,
    "instructions": True,
    "hint": False,
    "requires": False,
    "setup": False,
    "check": True,
    "solve": True,
    "reset": False,
}
_SET_KEYS = ("replicas", "model_version")


class LabFormatError(GitOpsLabError):
    """A lab folder does not follow the lab format. ``problems`` lists each, with file:line."""

    exit_code = 2

    def __init__(self, lab: str, problems: list[str]):
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"lab {lab} is invalid ({count}): " + "; ".join(problems),
            fix="fix the lab files; the format is in docs/authoring-labs.md",
        )
        self.lab = lab
        self.problems = problems


@dataclass
class Action:
    name: str
    params: dict[str, Any]
    where: str  # file:line

    @property
    def spec(self) -> ActionSpec:
        return ACTIONS[self.name]

    def describe(self) -> str:
        if self.name == "python":
            return f"python {self.params['function']}"
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items() if k not in ("hint", "content", "message"))
        return f"{self.name} {shown}".strip()


@dataclass
class Step:
    id: str
    title: str
    instructions: Path
    hints: list[str]
    setup: list[Action]
    check: list[Action]
    solve: list[Action]
    reset: list[Action]
    where: str
    #: What this step alone needs beyond a cluster (see REQUIREMENTS); elsewhere it is skipped, saying why.
    requires: list[str] = field(default_factory=list)

    def text(self) -> str:
        return read_text(
            self.instructions, "instructions file", fix="fix the lab's instructions file", limit=LAB_FILE_LIMIT
        )

    def actions(self, phase: str) -> list[Action]:
        """The actions of ``phase``: one of PHASES."""
        return {"setup": self.setup, "check": self.check, "solve": self.solve, "reset": self.reset}[phase]

    def needs_cluster(self) -> bool:
        return any(a.spec.needs_cluster for phase in PHASES for a in self.actions(phase))


@dataclass
class Lab:
    id: str
    title: str
    summary: str
    engines: list[str]
    order: int
    steps: list[Step]
    folder: Path
    requires: list[str] = field(default_factory=list)

    @property
    def file(self) -> Path:
        return self.folder / LAB_FILE

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise NotFound(
            f"lab {self.id} has no step {step_id!r}", fix=f"use one of: {', '.join(s.id for s in self.steps)}"
        )

    def index(self, step_id: str) -> int:
        return self.steps.index(self.step(step_id))

    def needs_cluster(self) -> bool:
        return any(step.needs_cluster() for step in self.steps)


@dataclass
class _Problems:
    file: str
    items: list[str] = field(default_factory=list)

    def add(self, node: yaml.Node | None, where: str, text: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.items.append(f"{self.file}{line}: {where}: {text}" if where else f"{self.file}{line}: {text}")


def load_lab(folder: str | Path, display_root: Path | None = None) -> Lab:
    """Load and validate ``folder``; raise LabFormatError listing every problem."""
    folder = Path(folder)
    path = folder / LAB_FILE
    shown = _display(path, display_root)
    problems = _Problems(shown)
    if not path.is_file():
        raise LabFormatError(folder.name, [f"{shown}: missing; every lab folder needs a {LAB_FILE}"])
    try:
        text = read_text(path, "lab file", fix="", limit=LAB_FILE_LIMIT)
    except UsageError as exc:  # binary, too big, unreadable: one problem of this lab, not of `lab list`
        raise LabFormatError(folder.name, [f"{shown}: {exc.message.replace(f' {path}', '')}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise LabFormatError(folder.name, [f"{shown}{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    lab = _lab(root, folder, problems)
    if problems.items or lab is None:
        raise LabFormatError(folder.name, problems.items or [f"{shown}: empty"])
    return lab


def discover(root: str | Path) -> list[Path]:
    """Lab folders under ``root`` (those with a lab.yaml), in name order."""
    root = Path(root)
    return sorted(p.parent for p in root.glob(f"*/{LAB_FILE}"))


def _display(path: Path, root: Path | None) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


# -- node helpers -------------------------------------------------------------
def _mapping(node: yaml.Node, where: str, problems: _Problems, keys: dict[str, bool]) -> dict[str, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, where, f"expected a mapping with keys {', '.join(keys)}")
        return None
    found: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if key not in keys:
            problems.add(key_node, where, f"unknown key {key!r}; expected one of: {', '.join(keys)}")
            continue
        if key in found:
            problems.add(key_node, where, f"key {key!r} appears twice")
        found[key] = value_node
    for key, required in keys.items():
        if required and key not in found:
            problems.add(node, where, f"missing required key {key!r}")
    return found


def _string(
    node: yaml.Node | None, where: str, problems: _Problems, pattern: re.Pattern | None = None, form: str = "a string"
) -> str | None:
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str" or not node.value.strip():
        problems.add(node, where, f"expected {form}")
        return None
    if pattern and not pattern.match(node.value):
        problems.add(node, where, f"{node.value!r} is not {form}")
        return None
    return node.value


def _value(node: yaml.Node) -> Any:
    """A node as a plain Python value (params are stored this way), with versions.yaml's pins filled in."""
    return _expand(yaml.SafeLoader(yaml.serialize(node)).get_single_data()) if node is not None else None


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        return expand_pins(value)
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    return value


# -- the lab ------------------------------------------------------------------
def _lab(root: yaml.Node | None, folder: Path, problems: _Problems) -> Lab | None:
    if root is None:
        return None
    top = _mapping(root, "", problems, _TOP_KEYS)
    if top is None:
        return None
    lab_id = _string(top.get("id"), "id", problems, _SLUG, "a lowercase id of letters, digits and dashes")
    if lab_id and lab_id != folder.name:
        problems.add(top["id"], "id", f"{lab_id!r} must equal the folder name {folder.name!r}")
    title = _string(top.get("title"), "title", problems)
    summary = _string(top.get("summary"), "summary", problems)
    engines: list[str] = []
    node = top.get("engines")
    if node is not None:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            problems.add(node, "engines", f"expected a non-empty list of: {', '.join(ENGINES)}")
        else:
            for item in node.value:
                name = _string(item, "engines", problems)
                if name and name not in ENGINES:
                    problems.add(item, "engines", f"unknown engine {name!r}; expected one of: {', '.join(ENGINES)}")
                elif name:
                    engines.append(name)
    order = 100
    if "order" in top:
        node = top["order"]
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
            order = int(node.value)
        else:
            problems.add(node, "order", "expected an integer (the lab's place in `lab list`)")
    requires = _requires(top.get("requires"), "requires", problems)
    steps: list[Step] = []
    node = top.get("steps")
    if node is not None:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            problems.add(node, "steps", "expected a non-empty list of steps")
        else:
            seen: set[str] = set()
            for index, item in enumerate(node.value):
                step = _step(item, f"steps[{index}]", folder, problems)
                if step and step.id in seen:
                    problems.add(item, f"steps[{index}].id", f"duplicate step id {step.id!r}")
                if step:
                    seen.add(step.id)
                    steps.append(step)
    if problems.items:
        return None
    return Lab(lab_id or "", title or "", summary or "", engines, order, steps, folder, requires)


def _requires(node: yaml.Node | None, where: str, problems: _Problems) -> list[str]:
    """A ``requires:`` list (of a lab, or of one step); [] when absent or wrong (the problem is added)."""
    if node is None:
        return []
    names = [_string(item, where, problems) for item in node.value] if isinstance(node, yaml.SequenceNode) else None
    if names is None or any(n not in REQUIREMENTS for n in names):
        problems.add(node, where, f"expected a list of: {', '.join(REQUIREMENTS)}")
        return []
    return [n for n in names if n]


def _step(node: yaml.Node, where: str, folder: Path, problems: _Problems) -> Step | None:
    fields = _mapping(node, where, problems, _STEP_KEYS)
    if fields is None:
        return None
    step_id = _string(fields.get("id"), f"{where}.id", problems, _SLUG, "a lowercase id of letters, digits and dashes")
    title = _string(fields.get("title"), f"{where}.title", problems)
    instructions = _string(
        fields.get("instructions"),
        f"{where}.instructions",
        problems,
        form="a Markdown file name relative to the lab folder",
    )
    if instructions:
        target = folder / instructions
        if not instructions.endswith(".md"):
            problems.add(fields["instructions"], f"{where}.instructions", f"{instructions!r} must be a .md file")
        elif not target.is_file():
            problems.add(
                fields["instructions"], f"{where}.instructions", f"{instructions!r} does not exist in {folder.name}/"
            )
    hints: list[str] = []
    hint = fields.get("hint")
    if hint is not None:
        if isinstance(hint, yaml.SequenceNode):
            hints = [h for h in (_string(h, f"{where}.hint", problems) for h in hint.value) if h]
        else:
            hints = [h for h in [_string(hint, f"{where}.hint", problems, form="a string or a list of strings")] if h]
    phases: dict[str, list[Action]] = {}
    for phase in PHASES:
        phase_node = fields.get(phase)
        if phase_node is None:
            phases[phase] = []
            continue
        phases[phase] = _actions(phase_node, f"{where}.{phase}", phase, folder, problems)
        if phase in ("check", "solve") and isinstance(phase_node, yaml.SequenceNode) and not phase_node.value:
            problems.add(phase_node, f"{where}.{phase}", "must list at least one action")
    if not (step_id and title and instructions):
        return None
    requires = _requires(fields.get("requires"), f"{where}.requires", problems)
    return Step(
        step_id,
        title,
        folder / instructions,
        hints,
        phases["setup"],
        phases["check"],
        phases["solve"],
        phases["reset"],
        f"{problems.file}:{node.start_mark.line + 1}",
        requires,
    )


def _actions(node: yaml.Node, where: str, phase: str, folder: Path, problems: _Problems) -> list[Action]:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []
    if not isinstance(node, yaml.SequenceNode):
        problems.add(node, where, "expected a list of actions, each `- name: {params}`")
        return []
    actions = []
    for index, item in enumerate(node.value):
        action = _action(item, f"{where}[{index}]", phase, folder, problems)
        if action:
            actions.append(action)
    return actions


def _action(node: yaml.Node, where: str, phase: str, folder: Path, problems: _Problems) -> Action | None:
    names = ", ".join(n for n, s in ACTIONS.items() if allowed_in(phase, s))
    if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
        problems.add(node, where, f"expected one action as `name: {{params}}`, one of: {names}")
        return None
    key_node, params_node = node.value[0]
    name = key_node.value
    spec = ACTIONS.get(name)
    if spec is None:
        problems.add(key_node, where, f"unknown action {name!r}; expected one of: {names}")
        return None
    if not allowed_in(phase, spec):
        kind = "an assertion" if spec.kind == "assert" else "an action that changes things"
        problems.add(key_node, where, f"{name!r} is {kind} and cannot be used in {phase}; expected one of: {names}")
        return None
    start = len(problems.items)
    line = f"{problems.file}:{node.start_mark.line + 1}"
    if name == "python" and isinstance(params_node, yaml.ScalarNode):
        params: dict[str, Any] = {"function": params_node.value}
        _check_function(params_node, params_node.value, where, folder, problems)
        return None if len(problems.items) > start else Action(name, params, line)
    if isinstance(params_node, yaml.ScalarNode) and params_node.tag == "tag:yaml.org,2002:null":
        params_node = yaml.MappingNode("tag:yaml.org,2002:map", [], params_node.start_mark, params_node.end_mark)
    if not isinstance(params_node, yaml.MappingNode):
        problems.add(params_node, where, f"expected parameters as a mapping: {spec.form()}")
        return None
    params = {}
    for pkey, pvalue in params_node.value:
        param = spec.params.get(pkey.value)
        if param is None:
            problems.add(pkey, where, f"{name} takes no parameter {pkey.value!r}; expected {spec.form()}")
            continue
        value = _value(pvalue)
        error = _type_error(param.type, param.choices, value)
        if error:
            problems.add(pvalue, f"{where}.{pkey.value}", f"{error}; expected {spec.form()}")
            continue
        params[pkey.value] = value
    for pname, param in spec.params.items():
        if param.required and pname not in params and not any(p.value == pname for p, _ in params_node.value):
            problems.add(params_node, where, f"{name} needs {pname!r}; expected {spec.form()}")
    if name == "commit_file":
        given = [k for k in ("content", "set", "replace") if k in params]
        if len(given) != 1:
            problems.add(params_node, where, "commit_file needs exactly one of content, set or replace")
        if "path" not in params and "env" not in params:
            problems.add(params_node, where, "commit_file needs path or env")
        for key in params.get("set", {}) or {}:
            if key not in _SET_KEYS:
                problems.add(
                    params_node, f"{where}.set", f"unknown field {key!r}; expected one of: {', '.join(_SET_KEYS)}"
                )
        if "replace" in params and set(params["replace"]) != {"old", "new"}:
            problems.add(params_node, f"{where}.replace", "expected {old: TEXT, new: TEXT}")
        if ("set" in params or "replace" in params) is False and "content" in params and "path" not in params:
            problems.add(params_node, where, "commit_file with content needs path")
    if name in ("observe", "observed") and "command" in params:
        commands = [params["command"]] if isinstance(params["command"], str) else params["command"]
        for command in commands:
            if command not in COMMANDS:
                problems.add(
                    params_node,
                    f"{where}.command",
                    f"unknown command {command!r}; expected one of: {', '.join(COMMANDS)}",
                )
        wants = COMMANDS.get(commands[0], ("to",))[:1]
        if name == "observe" and wants and wants[0] not in params:
            problems.add(params_node, where, f"observe: {{command: {commands[0]}}} needs {wants[0]!r}")
    if name == "python" and "function" in params:
        _check_function(params_node, params["function"], where, folder, problems)
    if len(problems.items) > start:
        return None
    return Action(name, params, line)


def _type_error(kind: str, choices: tuple[str, ...], value: Any) -> str | None:
    if kind in ("str", "env", "env_or_all", "version") and not isinstance(value, str):
        return f"{value!r} is not a string"
    if kind == "env" and value not in ENVIRONMENTS:
        return f"unknown environment {value!r}"
    if kind == "env_or_all" and value not in ENV_OR_ALL:
        return f"unknown environment {value!r}"
    if kind == "version" and not _VERSION.match(value):
        return f"{value!r} is not a model version"
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        return f"{value!r} is not an integer"
    if kind == "bool" and not isinstance(value, bool):
        return f"{value!r} is not true or false"
    if kind == "mapping" and not isinstance(value, dict):
        return f"{value!r} is not a mapping"
    if kind == "str_or_list" and not (
        isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
    ):
        return f"{value!r} is neither a string nor a list of strings"
    if kind == "list" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return f"{value!r} is not a list of strings"
    if choices and value not in choices:
        return f"{value!r} is not one of {', '.join(choices)}"
    return None


def _check_function(node: yaml.Node, ref: Any, where: str, folder: Path, problems: _Problems) -> None:
    """The module must be a file in the lab folder defining the function (read, not run)."""
    match = _FUNCTION.match(ref) if isinstance(ref, str) else None
    if not match:
        problems.add(
            node,
            where,
            f"{ref!r} is not `module:function`; expected python: MODULE:FUNCTION (MODULE.py in the lab folder)",
        )
        return
    module, function = match.groups()
    source = folder / f"{module}.py"
    if not source.is_file():
        problems.add(node, where, f"{module}.py does not exist in {folder.name}/")
        return
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except SyntaxError as exc:
        problems.add(node, where, f"{module}.py does not parse: line {exc.lineno}: {exc.msg}")
        return
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if function not in defined:
        problems.add(node, where, f"{module}.py defines no function {function!r}")

"""The pipeline design document: its structure, and whether it agrees with the repository it sits in.

The document (docs/pipeline-design.md in the lab repository, seeded from a
template) is Markdown with one `## ` heading per section. The sections that
name things the repository defines carry them in one fenced ```yaml block, so
the check parses them instead of searching prose (the convention is in
docs/design-document.md):

- Stages: ``stages:``, each a stage of the pipeline: the platform pipeline's,
  and any job of the repository's own (ci_stages.py);
- Triggers: ``triggers:``, what starts which stages;
- Gates: ``gates:``, each gate of gates.yaml with its thresholds;
- Promotion and rollback: ``promotion:`` (the gates each environment requires)
  and ``rollback:`` (verification's thresholds that revert a release);
- Failure modes and who is paged: ``failure_modes:``.

Every difference is collected, not just the first (like gates.yaml's own
validation), so one run names everything to fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.adapters.repo.layout import ENVIRONMENTS, previous_environment
from gitops_lab.assessment.ci_stages import PipelineStages, pipeline_stages
from gitops_lab.assessment.repo_files import RepoFiles
from gitops_lab.errors import NotFound
from gitops_lab.gates import verification
from gitops_lab.gates.config import CONFIG_FILE, GATES, GatesConfig, config_from_text
from gitops_lab.model import EVAL_THRESHOLD

DOC_PATH = "docs/pipeline-design.md"
#: The word the template marks every place to fill in with.
PLACEHOLDER = "TODO"
#: verification's settings that decide whether a release is reverted: the rollback criteria must state each.
ROLLBACK_THRESHOLDS = ("accuracy_tolerance", "max_error_rate", "max_latency_p95_seconds", "max_restarts")


@dataclass(frozen=True)
class Section:
    key: str  # short name, in problems and JSON
    title: str  # the `## ` heading (a leading number like "3." is allowed)
    blocks: tuple[str, ...] = ()  # the top-level keys of its ```yaml block; none: prose only


SECTIONS = (
    Section("differences", "What differs from a traditional software pipeline"),
    Section("stages", "Stages", ("stages",)),
    Section("triggers", "Triggers", ("triggers",)),
    Section("gates", "Gates", ("gates",)),
    Section("promotion-rollback", "Promotion and rollback", ("promotion", "rollback")),
    Section("security", "Security controls"),
    Section("failure-modes", "Failure modes and who is paged", ("failure_modes",)),
)


@dataclass(frozen=True)
class Problem:
    section: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.section}{f' (line {self.line})' if self.line else ''}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"section": self.section, "line": self.line, "message": self.message}


@dataclass
class DesignReport:
    path: str
    where: str
    problems: list[Problem] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)  # the stages the document describes
    gates: list[str] = field(default_factory=list)  # the gates it describes
    templates: list[str] = field(
        default_factory=list
    )  # where its stages were read: the platform, and the pipeline files of the repository

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "where": self.where,
            "passed": self.passed,
            "problems": [p.to_dict() for p in self.problems],
            "stages": self.stages,
            "gates": self.gates,
            "templates": self.templates,
        }


# -- reading the Markdown ----------------------------------------------------------
@dataclass
class _Parsed:
    line: int  # of the heading
    text: list[tuple[int, str]] = field(default_factory=list)  # (line number, line) of the body
    yaml: list[tuple[int, str]] = field(default_factory=list)  # (line of the first YAML line, YAML text)


_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w-]*)")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_PLACEHOLDER = re.compile(rf"\b{PLACEHOLDER}\b")


def _normal(title: str) -> str:
    title = re.sub(r"^\s*\d+[.)]?\s+", "", title)
    return " ".join(re.sub(r"[^\w\s-]", " ", title.lower()).split())


def _sections(text: str) -> tuple[dict[str, _Parsed], list[Problem]]:
    """The body of each known `## ` section, keyed by Section.key, and problems of the layout itself."""
    by_title = {_normal(s.title): s for s in SECTIONS}
    found: dict[str, _Parsed] = {}
    problems: list[Problem] = []
    current: _Parsed | None = None
    fence: str | None = None
    block: list[str] = []
    block_start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence, block, block_start = match.group(1), [], number + 1
            is_yaml = match.group(2).lower() in ("yaml", "yml")
            if current is not None:
                current.text.append((number, line))
            fence = fence if is_yaml else "!" + fence  # "!": a fence whose content is not the section's YAML
            continue
        if fence is not None:
            if line.strip().startswith(fence.lstrip("!")) and not line.strip().strip("`~"):
                if current is not None and not fence.startswith("!"):
                    current.yaml.append((block_start, "\n".join(block)))
                fence = None
            else:
                block.append(line)
            if current is not None:
                current.text.append((number, line))
            continue
        if line.startswith("## "):
            section = by_title.get(_normal(line[3:]))
            current = None
            if section is not None:
                if section.key in found:
                    problems.append(Problem(section.key, f"'## {section.title}' appears twice; keep one", number))
                else:
                    current = found[section.key] = _Parsed(number)
            continue
        if line.startswith("# "):
            current = None
            continue
        if current is not None:
            current.text.append((number, line))
    return found, problems


def _structure(parsed: dict[str, _Parsed]) -> list[Problem]:
    problems = []
    for section in SECTIONS:
        body = parsed.get(section.key)
        if body is None:
            problems.append(Problem(section.key, f"the section '## {section.title}' is missing: add it"))
            continue
        lines = _COMMENT.sub("", "\n".join(line for _, line in body.text))
        if not lines.strip() or not any(line.strip() and not _FENCE.match(line) for line in lines.splitlines()):
            problems.append(Problem(section.key, "the section is empty: write it", body.line))
            continue
        marked = [number for number, line in body.text if _PLACEHOLDER.search(_COMMENT.sub("", line))]
        if marked:
            problems.append(
                Problem(
                    section.key,
                    f"still holds the template's placeholder {PLACEHOLDER} on line{'s' if len(marked) > 1 else ''} "
                    f"{', '.join(map(str, marked))}: replace each with what your pipeline does",
                    marked[0],
                )
            )
    return problems


def _block(section: Section, body: _Parsed | None, problems: list[Problem]) -> dict[str, Any]:
    """The section's ```yaml block as a mapping ({} when there is none or it does not parse)."""
    import yaml

    if body is None:
        return {}
    keys = ", ".join(f"`{key}:`" for key in section.blocks)
    if len(body.yaml) != 1:
        problems.append(
            Problem(
                section.key,
                f"needs exactly one ```yaml block with {keys}, found {len(body.yaml)}"
                + ("" if body.yaml else " (docs/design-document.md shows the form)"),
                body.line,
            )
        )
        if not body.yaml:
            return {}
    start, text = body.yaml[0]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = start + mark.line if mark else start
        problems.append(
            Problem(section.key, f"the yaml block is not valid YAML: {getattr(error, 'problem', error)}", line)
        )
        return {}
    if not isinstance(data, dict) or not any(key in data for key in section.blocks):
        problems.append(Problem(section.key, f"the yaml block must be a mapping with {keys}", start))
        return {}
    for key in section.blocks:
        if key not in data:
            problems.append(Problem(section.key, f"the yaml block has no `{key}:`", start))
    return data


# -- comparing values ----------------------------------------------------------------
def _same(said: Any, actual: Any) -> bool:
    if isinstance(said, bool) or isinstance(actual, bool):
        return said is actual
    if isinstance(said, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(said, actual, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(said, list) and isinstance(actual, list):
        return sorted(map(str, said)) == sorted(map(str, actual))
    if isinstance(said, dict) and isinstance(actual, dict):
        return said.keys() == actual.keys() and all(_same(said[k], actual[k]) for k in said)
    return bool(said == actual)


def _show(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _placeholder(value: Any) -> bool:
    """Whether a YAML value still holds the template's placeholder (then it is reported once, as such)."""
    return bool(_PLACEHOLDER.search(_show(value)))


def _entries(data: dict[str, Any], key: str, section: str, needs: dict[str, str], problems: list[Problem]) -> list:
    """The list under ``key``, keeping the entries with every field of ``needs`` (field: "text" or "list")."""
    value = data.get(key)
    if key in data and not isinstance(value, list):
        problems.append(Problem(section, f"`{key}:` must be a list of entries with {', '.join(needs)}"))
        return []
    kept = []
    for index, entry in enumerate(value or []):
        if not isinstance(entry, dict):
            problems.append(Problem(section, f"`{key}` entry {index + 1} must be a mapping with {', '.join(needs)}"))
            continue
        label = entry.get("name") or entry.get("to") or entry.get("event") or entry.get("failure") or index + 1
        missing = []
        for name, kind in needs.items():
            got = entry.get(name)
            if kind == "list" and isinstance(got, str):
                got = [got]
            if kind == "list" and not (isinstance(got, list) and all(str(item).strip() for item in got)):
                missing.append(f"`{name}` (a list)")
            elif kind == "text" and not (isinstance(got, (str, int, float)) and str(got).strip()):
                missing.append(f"`{name}`")
            elif kind == "mapping" and not (isinstance(got, dict) and got):
                missing.append(f"`{name}` (a mapping)")
        if missing:
            problems.append(Problem(section, f"`{key}` entry {label!s} has no {', '.join(missing)}"))
            continue
        kept.append(entry)
    return kept


# -- agreement with the repository ------------------------------------------------------
def _check_stages(data: dict[str, Any], pipeline: PipelineStages, report: DesignReport) -> None:
    problems = report.problems
    entries = _entries(
        data, "stages", "stages", {"name": "text", "inputs": "list", "outputs": "list", "artifacts": "list"}, problems
    )
    known = ", ".join(pipeline.stages)
    templates = ", ".join(pipeline.templates)
    named = []
    for entry in entries:
        name = str(entry["name"])
        if _placeholder(name):
            continue
        named.append(name)
        if name not in pipeline.stages:
            problems.append(Problem("stages", f"stage {name!r} is not a stage of the pipeline ({templates}: {known})"))
    report.stages = named
    for stage, where in pipeline.stages.items():
        if stage not in named:
            problems.append(Problem("stages", f"stage {stage!r} ({', '.join(where)}) is not described: add it"))


def _check_triggers(data: dict[str, Any], pipeline: PipelineStages, problems: list[Problem]) -> None:
    for entry in _entries(data, "triggers", "triggers", {"event": "text", "starts": "text"}, problems):
        stages = entry.get("stages") or []
        if not isinstance(stages, list):
            problems.append(Problem("triggers", f"trigger {entry['event']!r}: `stages:` must be a list of stage names"))
            continue
        for stage in stages:
            if not _placeholder(stage) and str(stage) not in pipeline.stages:
                problems.append(
                    Problem(
                        "triggers",
                        f"trigger {entry['event']!r} starts stage {stage!r}, which is not a stage of the pipeline "
                        f"({', '.join(pipeline.stages)})",
                    )
                )


def _effective(gate: str, key: str, config: GatesConfig) -> Any:
    return config.settings[gate][key]


def _threshold_agrees(gate: str, key: str, said: Any, actual: Any) -> bool:
    if _same(said, actual):
        return True
    # min_score null: model-eval uses the threshold each artifact records, which training sets for every version.
    if gate == "model-eval" and key == "min_score" and actual is None:
        return _same(said, EVAL_THRESHOLD)
    return False


def _check_gates(data: dict[str, Any], config: GatesConfig, report: DesignReport) -> None:
    problems = report.problems
    required_by: dict[str, list[str]] = {}
    for env in ENVIRONMENTS:
        for gate in config.required_for(env):
            required_by.setdefault(gate, []).append(env)
    named = []
    for entry in _entries(data, "gates", "gates", {"name": "text", "thresholds": "mapping"}, problems):
        name = str(entry["name"])
        if _placeholder(name):
            continue
        named.append(name)
        if name not in GATES:
            problems.append(Problem("gates", f"gate {name!r} does not exist (gates.yaml knows {', '.join(GATES)})"))
            continue
        if name not in required_by:
            problems.append(Problem("gates", f"gate {name!r} is not required for any environment in {CONFIG_FILE}"))
        settings = config.settings[name]
        for key, said in entry["thresholds"].items():
            if _placeholder(said):
                continue
            if key not in settings:
                problems.append(
                    Problem(
                        "gates",
                        f"gate {name!r} has no setting {key!r} in {CONFIG_FILE} "
                        f"(its settings: {', '.join(sorted(settings)) or 'none'})",
                    )
                )
            elif not _threshold_agrees(name, key, said, _effective(name, key, config)):
                problems.append(
                    Problem(
                        "gates",
                        f"{name}.{key}: the document says {_show(said)}, {CONFIG_FILE} says "
                        f"{_show(_effective(name, key, config))}",
                    )
                )
    report.gates = named
    for gate, envs in required_by.items():
        if gate not in named:
            problems.append(
                Problem("gates", f"gate {gate!r} ({CONFIG_FILE} requires it for {', '.join(envs)}) is not described")
            )


def _check_promotion(data: dict[str, Any], config: GatesConfig, problems: list[Problem]) -> None:
    where = "promotion-rollback"
    covered = set()
    entries = _entries(data, "promotion", where, {"to": "text", "from": "text", "gates": "list"}, problems)
    for entry in entries:
        dst, src = str(entry["to"]), str(entry["from"])
        if _placeholder(dst):
            continue
        if dst not in ENVIRONMENTS:
            problems.append(Problem(where, f"promotion to {dst!r}: no such environment ({', '.join(ENVIRONMENTS)})"))
            continue
        covered.add(dst)
        if not _placeholder(src) and src != previous_environment(dst):
            problems.append(
                Problem(
                    where,
                    f"promotion to {dst}: the document says from {src}, but {dst} takes its version from "
                    f"{previous_environment(dst) or 'nowhere (it is the first environment)'}",
                )
            )
        said = [str(g) for g in (entry["gates"] if isinstance(entry["gates"], list) else [entry["gates"]])]
        if any(_placeholder(g) for g in said):
            continue
        said = [] if said == ["none"] else said
        required = config.required_for(dst)
        extra = [g for g in said if g not in required]
        missing = [g for g in required if g not in said]
        if extra or missing:
            parts = ([f"{CONFIG_FILE} does not require {', '.join(extra)}"] if extra else []) + (
                [f"it also requires {', '.join(missing)}"] if missing else []
            )
            problems.append(
                Problem(
                    where,
                    f"promotion to {dst}: the document lists gates {_show(said)}, but {'; '.join(parts)} "
                    f"(required.{dst}: {_show(required)})",
                )
            )
    for env in ENVIRONMENTS[1:]:
        if env not in covered:
            problems.append(Problem(where, f"`promotion:` has no entry for promotion to {env}: add one"))


def _check_rollback(data: dict[str, Any], config: GatesConfig, problems: list[Problem]) -> None:
    where = "promotion-rollback"
    rollback = data.get("rollback")
    if "rollback" not in data:
        return  # _block reported it
    if not isinstance(rollback, dict) or not isinstance(rollback.get("verification"), dict):
        problems.append(
            Problem(where, "`rollback:` needs `verification:`, a mapping of the verification thresholds that revert")
        )
        return
    if not str(rollback.get("action") or "").strip():
        problems.append(Problem(where, "`rollback:` has no `action:` (what happens, and who or what does it)"))
    actual = config.verification
    said = rollback["verification"]
    for key, value in said.items():
        if _placeholder(value):
            continue
        if key not in verification.VerificationSettings.__dataclass_fields__:
            problems.append(
                Problem(
                    where,
                    f"rollback criterion {key!r} is not a setting of {CONFIG_FILE}'s verification "
                    f"({', '.join(verification.VerificationSettings.__dataclass_fields__)})",
                )
            )
        elif not _same(value, actual.get(key, {} if key == "traffic" else None)):
            problems.append(
                Problem(
                    where,
                    f"rollback criterion verification.{key}: the document says {_show(value)}, {CONFIG_FILE} says "
                    f"{_show(actual.get(key))}",
                )
            )
    for key in ROLLBACK_THRESHOLDS:
        if key not in said:
            problems.append(
                Problem(
                    where,
                    f"the rollback criteria leave out verification.{key} ({_show(actual.get(key))} in {CONFIG_FILE})",
                )
            )


def check_design(files: RepoFiles, path: str = DOC_PATH) -> DesignReport:
    """Check the design document at ``path`` in ``files``: structure, then agreement with the repository.

    NotFound when there is no document; a gates.yaml that is invalid raises its own RepoStateError.
    """
    text = files.read(path)
    if text is None:
        raise NotFound(
            f"there is no design document {path} in {files.where}",
            fix=f"restore the template with `git checkout gitops-lab/seed -- {DOC_PATH}`, or pass --path",
        )
    config = config_from_text(files.read(CONFIG_FILE), CONFIG_FILE)
    pipeline = pipeline_stages(files)
    report = DesignReport(path=path, where=files.where, templates=list(pipeline.templates))
    parsed, problems = _sections(text)
    report.problems += problems + _structure(parsed)
    report.problems += [Problem("stages", message) for message in pipeline.problems]
    blocks = {s.key: _block(s, parsed.get(s.key), report.problems) for s in SECTIONS if s.blocks and s.key in parsed}
    if "stages" in blocks:
        _check_stages(blocks["stages"], pipeline, report)
    if "triggers" in blocks:
        _check_triggers(blocks["triggers"], pipeline, report.problems)
    if "gates" in blocks:
        _check_gates(blocks["gates"], config, report)
    if "promotion-rollback" in blocks:
        _check_promotion(blocks["promotion-rollback"], config, report.problems)
        _check_rollback(blocks["promotion-rollback"], config, report.problems)
    if "failure-modes" in blocks:
        _entries(
            blocks["failure-modes"],
            "failure_modes",
            "failure-modes",
            {"failure": "text", "detected_by": "text", "paged": "text"},
            report.problems,
        )
    order = {s.key: i for i, s in enumerate(SECTIONS)}
    report.problems.sort(key=lambda p: order.get(p.section, len(order)))
    return report

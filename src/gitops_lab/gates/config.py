"""gates.yaml: which gates each destination requires, and their thresholds.

The file sits at the root of the lab repository, so gates change through Git.
Defaults are the file gitops-lab ships (``environments/gates.yaml``, the one the
repository was seeded with): a key the repository's file leaves out takes the
shipped value, and a repository without the file gets the shipped gates.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.errors import RepoStateError
from gitops_lab.gates import verification
from gitops_lab.textfiles import read_text

CONFIG_FILE = "gates.yaml"
GATES_FILE_LIMIT = 256 * 1024
#: Every gate, in the order they run when asked for by name.
GATES: tuple[str, ...] = ("data-quality", "model-eval", "policy", "approval")
POLICY_CHECKS = ("privileged", "host-access", "image-digest", "resources", "plaintext-secrets")
REGRESSION_MODES = ("fail", "warn", "off")


@dataclass
class GatesConfig:
    required: dict[str, list[str]]
    skippable: list[str]
    settings: dict[str, dict[str, Any]]
    source: str  # the file it was read from, or "defaults"
    verification: dict[str, Any] = field(default_factory=dict)  # post-deploy verification thresholds

    def required_for(self, env: str) -> list[str]:
        return list(self.required.get(env, []))


def _yaml_load(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise RepoStateError(
            f"{where}{line} is not valid YAML: {getattr(error, 'problem', error)}",
            fix=f"fix it and commit, or restore it with `git checkout gitops-lab/seed -- {CONFIG_FILE}`",
        ) from None


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    from gitops_lab.resources import environments_template

    path = environments_template() / CONFIG_FILE
    return _yaml_load(path.read_text(encoding="utf-8"), str(path)) or {}


def shipped_defaults() -> dict[str, Any]:
    """The gates.yaml gitops-lab ships, parsed (a copy: callers may change it)."""
    return copy.deepcopy(_shipped())


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(root: str | Path) -> GatesConfig:
    """Read ``<root>/gates.yaml`` over the shipped defaults, and validate it.

    Every problem is reported at once, in one RepoStateError.
    """
    path = Path(root) / CONFIG_FILE
    text = None
    if path.is_file():
        text = read_text(
            path,
            "gates file",
            limit=GATES_FILE_LIMIT,
            fix=f"fix it and commit, or restore it with `git checkout gitops-lab/seed -- {CONFIG_FILE}`",
        )
    return config_from_text(text)


def config_from_text(text: str | None, where: str = CONFIG_FILE) -> GatesConfig:
    """A gates.yaml's text (None: no file) over the shipped defaults, validated; e.g. as of an older commit."""
    data = shipped_defaults()
    source = "defaults"
    if text is not None:
        found = _yaml_load(text, where)
        if found is None:
            found = {}
        if not isinstance(found, dict):
            raise RepoStateError(
                f"{where} must be a mapping (required:, skippable:, one section per gate)",
                fix=f"see docs/gates.md, or restore it with `git checkout gitops-lab/seed -- {CONFIG_FILE}`",
            )
        data = _merge(data, found)
        source = where
    return _validate(data, source)


def _validate(data: dict[str, Any], source: str) -> GatesConfig:
    problems: list[str] = []
    known_keys = {"required", "skippable", verification.SECTION, *GATES}
    for key in sorted(set(data) - known_keys, key=str):
        problems.append(f"unknown key {key!r} (expected: {', '.join(sorted(known_keys))})")

    required = data.get("required") or {}
    if not isinstance(required, dict):
        problems.append("required: must map each environment to a list of gates")
        required = {}
    for env, names in required.items():
        if env not in ENVIRONMENTS:
            problems.append(f"required.{env}: unknown environment (expected one of {', '.join(ENVIRONMENTS)})")
        problems += _gate_list(f"required.{env}", names)
    skippable = data.get("skippable") or []
    problems += _gate_list("skippable", skippable)

    settings = {name: data.get(name) or {} for name in GATES}
    for name, section in settings.items():
        if not isinstance(section, dict):
            problems.append(f"{name}: must be a mapping of settings")
            settings[name] = {}
    problems += _check_settings(settings)
    problems += verification.problems(data.get(verification.SECTION))
    if problems:
        raise RepoStateError(
            f"{source} is invalid: " + "; ".join(problems),
            fix=f"fix it and commit (docs/gates.md lists every key), or restore it with "
            f"`git checkout gitops-lab/seed -- {CONFIG_FILE}`",
        )
    return GatesConfig(
        required={env: list(names or []) for env, names in required.items()},
        skippable=list(skippable),
        settings=settings,
        source=source,
        verification=data[verification.SECTION],  # a mapping: _validate checked it
    )


def _gate_list(where: str, names: Any) -> list[str]:
    if names is None:
        return []
    if not isinstance(names, list):
        return [f"{where}: must be a list of gate names"]
    return [
        f"{where}: unknown gate {name!r} (expected one of {', '.join(GATES)})" for name in names if name not in GATES
    ]


def _number(where: str, value: Any, allow_none: bool = False) -> list[str]:
    if value is None and allow_none:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{where}: expected a number, got {value!r}"]
    return []


def _check_settings(settings: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    dq = settings["data-quality"]
    for key in ("min_training_rows", "max_dropped_fraction", "max_mean_shift", "max_psi"):
        problems += _number(f"data-quality.{key}", dq.get(key))
    rate = dq.get("positive_rate")
    if not isinstance(rate, dict):
        problems.append("data-quality.positive_rate: expected {min: NUMBER, max: NUMBER}")
    else:
        problems += _number("data-quality.positive_rate.min", rate.get("min"))
        problems += _number("data-quality.positive_rate.max", rate.get("max"))

    ev = settings["model-eval"]
    problems += _number("model-eval.min_score", ev.get("min_score"), allow_none=True)
    problems += _number("model-eval.regression_tolerance", ev.get("regression_tolerance"))
    if ev.get("regression") not in REGRESSION_MODES:
        problems.append(
            f"model-eval.regression: expected one of {', '.join(REGRESSION_MODES)}, got {ev.get('regression')!r}"
        )
    if not isinstance(ev.get("verify_metric"), bool):
        problems.append("model-eval.verify_metric: expected true or false")

    pol = settings["policy"]
    checks = pol.get("checks")
    if not isinstance(checks, list):
        problems.append(f"policy.checks: expected a list from {', '.join(POLICY_CHECKS)}")
    else:
        problems += [
            f"policy.checks: unknown check {c!r} (expected one of {', '.join(POLICY_CHECKS)})"
            for c in checks
            if c not in POLICY_CHECKS
        ]
    for key in ("required_resources", "secret_env_names"):
        value = pol.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"policy.{key}: expected a list of strings")
    for item in pol.get("required_resources") or []:
        if isinstance(item, str) and item.split(".", 1)[0] not in ("requests", "limits"):
            problems.append(f"policy.required_resources: {item!r} must start with requests. or limits.")

    approvers = settings["approval"].get("approvers")
    if approvers is not None and (not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers)):
        problems.append("approval.approvers: expected a list of names")
    separate = settings["approval"].get("separate_duties")
    if separate is not None and (not isinstance(separate, list) or not all(e in ENVIRONMENTS for e in separate)):
        problems.append(f"approval.separate_duties: expected a list of environments ({', '.join(ENVIRONMENTS)})")
    return problems

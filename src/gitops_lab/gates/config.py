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
from typing import TYPE_CHECKING, Any

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.errors import DamagedFile
from gitops_lab.gates import custom, verification
from gitops_lab.textfiles import read_text, yaml_loader

if TYPE_CHECKING:  # a type only: importing the snapshot loads the Git core, which `--help` must not
    from gitops_lab.adapters.repo.snapshot import RepoSnapshot

CONFIG_FILE = "gates.yaml"
GATES_FILE_LIMIT = 256 * 1024
#: Every gate, in the order they run when asked for by name.
GATES: tuple[str, ...] = ("data-quality", "model-eval", "policy", "secret-scan", "vuln-scan", "approval")
POLICY_CHECKS = ("privileged", "host-access", "image-digest", "resources", "plaintext-secrets", "model-signature")
REGRESSION_MODES = ("fail", "warn", "off")


@dataclass
class GatesConfig:
    required: dict[str, list[str]]
    skippable: list[str]
    settings: dict[str, dict[str, Any]]
    source: str  # the file it was read from, or "defaults"
    verification: dict[str, Any] = field(default_factory=dict)  # post-deploy verification thresholds
    custom: dict[str, custom.CustomGate] = field(default_factory=dict)  # gates.yaml's custom gates, in order

    def required_for(self, env: str) -> list[str]:
        return list(self.required.get(env, []))

    @property
    def names(self) -> tuple[str, ...]:
        """Every gate this file knows: the built-in ones, then its custom gates."""
        return (*GATES, *self.custom)


def _yaml_load(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=yaml_loader())  # a SafeLoader that also refuses aliases
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise DamagedFile(
            f"{where}{line} is not valid YAML: {getattr(error, 'problem', error)}",
            fix=f"fix it and commit, or restore it with `git checkout gitops-lab/seed -- {CONFIG_FILE}`",
        ) from None


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    # Start-up: --help reads this module for the gates' names; resources loads versions.yaml through YAML.
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

    Every problem is reported at once, in one DamagedFile (exit 2).
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


def config_at(snapshot: RepoSnapshot) -> GatesConfig:
    """gates.yaml as it is in ``snapshot`` (a ref, or the working tree) over the shipped defaults, validated.

    At a commit, errors name it (``gates.yaml at 1a2b3c4``); a file that is not
    UTF-8 text is a UsageError, as it is in the working tree.
    """
    fix = f"fix it and commit, or restore it with `git checkout gitops-lab/seed -- {CONFIG_FILE}`"
    text = snapshot.text(CONFIG_FILE, "gates file", limit=GATES_FILE_LIMIT, fix=fix)
    return config_from_text(text, snapshot.name(CONFIG_FILE))


def config_from_text(text: str | None, where: str = CONFIG_FILE) -> GatesConfig:
    """A gates.yaml's text (None: no file) over the shipped defaults, validated; e.g. as of an older commit."""
    data = shipped_defaults()
    source = "defaults"
    if text is not None:
        found = _yaml_load(text, where)
        if found is None:
            found = {}
        if not isinstance(found, dict):
            raise DamagedFile(
                f"{where} must be a mapping (required:, skippable:, one section per gate)",
                fix=f"see docs/gates.md, or restore it with `git checkout gitops-lab/seed -- {CONFIG_FILE}`",
            )
        data = _merge(data, found)
        source = where
    return _validate(data, source)


#: Problems named in the one error line; the rest are counted.
_SHOWN_PROBLEMS = 10


def _validate(data: dict[str, Any], source: str) -> GatesConfig:
    problems: list[str] = []
    known_keys = {"required", "skippable", verification.SECTION, custom.SECTION, *GATES}
    for key in sorted(set(data) - known_keys, key=str):
        problems.append(f"unknown key {key!r} (expected: {', '.join(sorted(known_keys))})")
    custom_problems = custom.problems(data.get(custom.SECTION), GATES)
    problems += custom_problems
    custom_gates = {} if custom_problems else custom.parse(data.get(custom.SECTION))
    # A custom gate whose declaration is wrong is still a name: say what is wrong with it, not "unknown gate".
    section = data.get(custom.SECTION)
    declared: dict[Any, Any] = section if isinstance(section, dict) else {}
    names = (*GATES, *(n for n in declared if isinstance(n, str)))

    required = data.get("required") or {}
    if not isinstance(required, dict):
        problems.append("required: must map each environment to a list of gates")
        required = {}
    for env, gates in required.items():
        if env not in ENVIRONMENTS:
            problems.append(f"required.{env}: unknown environment (expected one of {', '.join(ENVIRONMENTS)})")
        problems += _gate_list(f"required.{env}", gates, names)
    skippable = data.get("skippable") or []
    problems += _gate_list("skippable", skippable, names)

    settings = {name: data.get(name) or {} for name in GATES}
    for name, section in settings.items():
        if not isinstance(section, dict):
            problems.append(f"{name}: must be a mapping of settings")
            settings[name] = {}
    problems += _check_settings(settings)
    problems += verification.problems(data.get(verification.SECTION))
    if problems:
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        if len(problems) > _SHOWN_PROBLEMS:  # the error stays one readable line, whatever the file holds
            shown += f"; and {len(problems) - _SHOWN_PROBLEMS} more"
        raise DamagedFile(
            f"{source} is invalid: {shown}",
            fix=f"fix it and commit (docs/gates.md lists every key), or restore it with "
            f"`git checkout gitops-lab/seed -- {CONFIG_FILE}`",
        )
    return GatesConfig(
        required={env: list(gates or []) for env, gates in required.items()},
        skippable=list(skippable),
        settings=settings,
        source=source,
        verification=data[verification.SECTION],  # a mapping: _validate checked it
        custom=custom_gates,
    )


def _gate_list(where: str, gates: Any, known: tuple[str, ...]) -> list[str]:
    if gates is None:
        return []
    if not isinstance(gates, list):
        return [f"{where}: must be a list of gate names"]
    return [
        f"{where}: unknown gate {name!r} (expected one of {', '.join(known)}, or a gate declared under {custom.SECTION}:)"
        for name in gates
        if name not in known
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
    for key in ("required_resources", "secret_env_names", "trusted_keys"):
        value = pol.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"policy.{key}: expected a list of strings")
    for item in pol.get("required_resources") or []:
        if isinstance(item, str) and item.split(".", 1)[0] not in ("requests", "limits"):
            problems.append(f"policy.required_resources: {item!r} must start with requests. or limits.")

    commits = settings["secret-scan"].get("commits")
    if not isinstance(commits, str) or not commits.strip() or commits.startswith("-"):
        problems.append("secret-scan.commits: expected all, or a git revision range (origin/main..HEAD)")

    lockfile = settings["vuln-scan"].get("lockfile")
    if not isinstance(lockfile, str) or not lockfile.strip() or lockfile.startswith(("-", "/")) or ".." in lockfile:
        problems.append("vuln-scan.lockfile: expected a file in the repository, such as requirements.lock")

    approvers = settings["approval"].get("approvers")
    if approvers is not None and (not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers)):
        problems.append("approval.approvers: expected a list of names")
    separate = settings["approval"].get("separate_duties")
    if separate is not None and (not isinstance(separate, list) or not all(e in ENVIRONMENTS for e in separate)):
        problems.append(f"approval.separate_duties: expected a list of environments ({', '.join(ENVIRONMENTS)})")
    return problems

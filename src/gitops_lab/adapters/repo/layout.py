"""The shape of the seeded repository: overlays per environment, models in base.

    base/                       the model server's Deployment, Service, ConfigMaps
    base/models/<version>.json  one artifact per model version, with its metrics
    overlays/<env>/kustomization.yaml
                                names the environment's model version on exactly
                                one line: ``gitops-lab.io/model-version: <version>``

Promotion changes that one value and nothing else, so a promotion diff is one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gitops_lab.errors import DamagedFile, NotFound, RepoStateError, UsageError
from gitops_lab.textfiles import json_kind, load_json_object, read_exact, write_exact, yaml_loader

# Promotion order: changes flow from left to right.
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
#: The branch the engines sync from and every change is pushed to.
BRANCH = "main"
#: The model server's Deployment in base/, the one every overlay patches.
DEPLOYMENT = "model-server"
VERSION_LABEL = "gitops-lab.io/model-version"
_VERSION_LINE = re.compile(
    r"^(?P<indent>\s*)" + re.escape(VERSION_LABEL) + r":\s*[\"']?(?P<version>[^\s\"'#]+)[\"']?(?P<rest>\s*(#.*)?)$",
    re.MULTILINE,
)
_VERSION_NAME = re.compile(r"^v\d+$")


def previous_environment(env: str) -> str | None:
    """The environment a promotion to ``env`` takes its version from; None for the first (or an unknown) one."""
    if env in ENVIRONMENTS and ENVIRONMENTS.index(env) > 0:
        return ENVIRONMENTS[ENVIRONMENTS.index(env) - 1]
    return None


def overlay_path(env: str) -> str:
    """The overlay's kustomization file, relative to the repository root."""
    return f"overlays/{env}/kustomization.yaml"


def version_in_text(text: str, where: str) -> str:
    """Read the one model-version line of an overlay's kustomization text."""
    matches = list(_VERSION_LINE.finditer(text))
    if len(matches) != 1:
        raise DamagedFile(
            f"{where} must name its model version on exactly one `{VERSION_LABEL}:` line, found {len(matches)}",
            fix=f"restore the line, for example `git checkout gitops-lab/seed -- {where}`",
        )
    return matches[0].group("version")


def version_on_line(line: str) -> str | None:
    """The model version a single overlay line names, or None when it is not the version line."""
    found = _VERSION_LINE.match(line.rstrip("\n"))
    return found.group("version") if found else None


#: The sections of a model artifact that gates, verification and the model server read as objects.
_ARTIFACT_SECTIONS = ("metrics", "evaluation", "training", "model", "self_check")


def artifact_fix(rel: str) -> str:
    return f"restore it with `git checkout gitops-lab/seed -- {rel}`, or retrain it (docs/model.md)"


def checked_artifact(data: dict[str, Any], where: str, fix: str) -> dict[str, Any]:
    """``data`` when its sections have the types gates and verification read, else UsageError naming the field.

    A metric must be a finite number (a nested object such as the confusion
    matrix is kept as it is): a string "0.99" or a boolean must not pass a gate.
    """
    for section in _ARTIFACT_SECTIONS:
        if section in data and not isinstance(data[section], dict):
            raise UsageError(f"{where}: {section} is a {json_kind(data[section])}, not an object", fix=fix)
    for name, value in (data.get("metrics") or {}).items():
        if not isinstance(value, dict) and not _is_number(value):
            raise UsageError(f"{where}: metrics.{name} is a {json_kind(value)}, not a number", fix=fix)
    threshold = (data.get("evaluation") or {}).get("threshold")
    if threshold is not None and not _is_number(threshold):
        raise UsageError(f"{where}: evaluation.threshold is a {json_kind(threshold)}, not a number", fix=fix)
    quality = (data.get("training") or {}).get("data_quality")
    if quality is not None and not isinstance(quality, dict):
        raise UsageError(f"{where}: training.data_quality is a {json_kind(quality)}, not an object", fix=fix)
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def replicas_in_text(text: str, deployment: str = DEPLOYMENT, where: str = "the overlay") -> int | None:
    """The replica count an overlay's ``replicas:`` sets for ``deployment``, or None when it sets none."""
    for item in overlay_yaml(text, where).get("replicas", []) or []:
        if isinstance(item, dict) and item.get("name") == deployment:
            count = item.get("count")
            if not isinstance(count, int) or isinstance(count, bool):
                raise DamagedFile(
                    f"{where} sets the replicas of {deployment} to {str(count)[:40]!r}, not a whole number",
                    fix=f"write a number, or restore it with `git checkout gitops-lab/seed -- {where}`",
                )
            return count
    return None


def overlay_yaml(text: str, where: str) -> dict[str, Any]:
    """An overlay's kustomization as a mapping; DamagedFile naming it when it is not one (or uses aliases)."""
    import yaml

    fix = f"fix it and commit, or restore it with `git checkout gitops-lab/seed -- {where}`"
    try:
        data = yaml.load(text, Loader=yaml_loader()) or {}  # a SafeLoader that also refuses aliases
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise DamagedFile(f"{where}{line} is not valid YAML: {getattr(error, 'problem', error)}", fix=fix) from None
    if not isinstance(data, dict):
        raise DamagedFile(f"{where} is a YAML {json_kind(data)}, not a mapping", fix=fix)
    return data


class RepoLayout:
    """Reads and edits the environments in one working copy."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def check_env(self, env: str) -> str:
        if env not in ENVIRONMENTS:
            raise NotFound(
                f"unknown environment {env!r}",
                fix=f"use one of: {', '.join(ENVIRONMENTS)}",
            )
        if not (self.root / overlay_path(env)).is_file():
            raise RepoStateError(
                f"{self.root} has no {overlay_path(env)}",
                fix="point --repo at a working copy made by `gitops-lab repo init`",
            )
        return env

    def versions(self) -> list[str]:
        """The model versions the repository ships, oldest first."""
        models = self.root / "base" / "models"
        names = [p.stem for p in models.glob("v*.json") if _VERSION_NAME.match(p.stem)]
        return sorted(names, key=lambda v: int(v[1:]))

    def check_version(self, version: str) -> str:
        available = self.versions()
        if version not in available:
            raise NotFound(
                f"model version {version!r} does not exist",
                fix=f"use one of: {', '.join(available) or 'none (base/models is empty)'}",
            )
        return version

    def model_artifact(self, version: str) -> dict[str, Any]:
        rel = f"base/models/{self.check_version(version)}.json"
        fix = artifact_fix(rel)
        return checked_artifact(
            load_json_object(self.root / rel, "model artifact", fix), f"the model artifact {rel}", fix
        )

    def model_version(self, env: str) -> str:
        self.check_env(env)
        return version_in_text(self._overlay_text(env), overlay_path(env))

    def _overlay_text(self, env: str) -> str:
        """The overlay as it is on disk (line ends and stray bytes kept: see ``read_exact``)."""
        return read_exact(self.root / overlay_path(env))

    def namespace(self, env: str) -> str:
        """The namespace the environment's overlay deploys into."""
        self.check_env(env)
        data = overlay_yaml(self._overlay_text(env), overlay_path(env))
        if not isinstance(data.get("namespace"), str) or not data["namespace"]:
            raise DamagedFile(f"{overlay_path(env)} sets no namespace", fix="restore the overlay from the seed tag")
        return data["namespace"]

    def set_model_version(self, env: str, version: str) -> None:
        """Rewrite the one version line, keeping the rest of the file byte for byte."""
        text = self._overlay_text(env)
        version_in_text(text, overlay_path(env))
        new_text = _VERSION_LINE.sub(lambda m: f"{m.group('indent')}{VERSION_LABEL}: {version}{m.group('rest')}", text)
        write_exact(self.root / overlay_path(env), new_text)

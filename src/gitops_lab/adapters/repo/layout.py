"""The shape of the seeded repository: overlays per environment, models in base.

    base/                       the model server's Deployment, Service, ConfigMaps
    base/models/<version>.json  one artifact per model version, with its metrics
    overlays/<env>/kustomization.yaml
                                names the environment's model version on exactly
                                one line: ``gitops-lab.io/model-version: <version>``

Promotion changes that one value and nothing else, so a promotion diff is one line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gitops_lab.errors import NotFound, RepoStateError

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
        raise RepoStateError(
            f"{where} must name its model version on exactly one `{VERSION_LABEL}:` line, found {len(matches)}",
            fix=f"restore the line, for example `git checkout gitops-lab/seed -- {where}`",
        )
    return matches[0].group("version")


def version_on_line(line: str) -> str | None:
    """The model version a single overlay line names, or None when it is not the version line."""
    found = _VERSION_LINE.match(line.rstrip("\n"))
    return found.group("version") if found else None


def replicas_in_text(text: str, deployment: str = DEPLOYMENT) -> int | None:
    """The replica count an overlay's ``replicas:`` sets for ``deployment``, or None when it sets none."""
    import yaml

    data = yaml.safe_load(text) or {}
    for item in data.get("replicas", []) or []:
        if item.get("name") == deployment:
            return int(item.get("count"))
    return None


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
        path = self.root / "base" / "models" / f"{self.check_version(version)}.json"
        return json.loads(path.read_text(encoding="utf-8"))

    def model_version(self, env: str) -> str:
        self.check_env(env)
        text = (self.root / overlay_path(env)).read_text(encoding="utf-8")
        return version_in_text(text, overlay_path(env))

    def namespace(self, env: str) -> str:
        """The namespace the environment's overlay deploys into."""
        import yaml

        self.check_env(env)
        data = yaml.safe_load((self.root / overlay_path(env)).read_text(encoding="utf-8")) or {}
        if not data.get("namespace"):
            raise RepoStateError(f"{overlay_path(env)} sets no namespace", fix="restore the overlay from the seed tag")
        return data["namespace"]

    def set_model_version(self, env: str, version: str) -> None:
        """Rewrite the one version line, keeping the rest of the file byte for byte."""
        path = self.root / overlay_path(env)
        text = path.read_text(encoding="utf-8")
        version_in_text(text, overlay_path(env))
        new_text = _VERSION_LINE.sub(lambda m: f"{m.group('indent')}{VERSION_LABEL}: {version}{m.group('rest')}", text)
        path.write_text(new_text, encoding="utf-8")

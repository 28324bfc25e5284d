"""Where the pinned scanners that scripts/install-ci-tools builds are found."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def tools_dir() -> Path:
    """scripts/install-ci-tools' folder: $GITOPS_LAB_CI_TOOLS, else ~/.cache/gitops-lab-ci-tools."""
    return Path(os.environ.get("GITOPS_LAB_CI_TOOLS", Path.home() / ".cache" / "gitops-lab-ci-tools"))


def find_tool(name: str, env_var: str) -> str | None:
    """The executable ``name``: $``env_var`` if set (and only it), else on PATH, else in tools_dir()/bin."""
    named = os.environ.get(env_var)
    if named:
        return named if os.access(named, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    built = tools_dir() / "bin" / name
    return str(built) if os.access(built, os.X_OK) else None

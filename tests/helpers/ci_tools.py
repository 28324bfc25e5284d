"""Where the CI tools the template tests run come from: PATH, or ~/.cache/gitops-lab-ci-tools
(scripts/install-ci-tools). A missing tool skips the test, naming it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TOOLS = Path(os.environ.get("GITOPS_LAB_CI_TOOLS", Path.home() / ".cache" / "gitops-lab-ci-tools"))


def tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (TOOLS / "bin" / name, TOOLS / "npm" / "node_modules" / ".bin" / name) if p.exists()), None
    )
    if not found:
        pytest.skip(f"{name} is not installed (run scripts/install-ci-tools, or put it on PATH)")
    return found


def act_push(*options: str) -> list[str]:
    """act's command line for a push event of the callers' workflow, run on this host (no containers),
    with only what is on disk (no action downloads)."""
    return [
        tool("act"),
        "push",
        *options,
        "-W",
        ".github/workflows/ci.yml",
        "-P",
        "ubuntu-latest=-self-hosted",
        "--action-offline-mode",
    ]

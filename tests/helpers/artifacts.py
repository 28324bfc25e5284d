"""Where end-to-end tests keep what a person may want to look at after a run (screenshots, real
command output): ``$GITOPS_LAB_TEST_ARTIFACTS``, by default ``test-artifacts/`` in the checkout
(git-ignored)."""

from __future__ import annotations

import os
from pathlib import Path

ARTIFACTS_ENV = "GITOPS_LAB_TEST_ARTIFACTS"
REPO_ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """The folder, made if missing."""
    path = Path(os.environ.get(ARTIFACTS_ENV) or REPO_ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path

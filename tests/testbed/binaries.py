"""Where tests/testbed/build.py put the testbed's binaries and CRDs, and whether the testbed can run here."""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path


from . import build


BUILD_HINT = "python tests/testbed/build.py"


def bin_dir() -> Path:
    return build.cache_dir() / "bin"


def crd_dir() -> Path:
    return build.cache_dir() / "crds"


def missing_reason(only: Collection[str] | None = None) -> str | None:
    """None when the testbed (or only the components named) can run here; otherwise why not and how to fix it."""
    ok, missing = build.is_complete(only=only)
    if not ok:
        hint = BUILD_HINT + "".join(f" --only {m}" for m in missing) if only is not None else BUILD_HINT
        return f"testbed not built (missing: {', '.join(missing)} in {build.cache_dir()}); build it with: {hint}"
    # Gitea alone needs only git; the cluster and the engines need the rest
    for exe in ("git",) if only is not None else ("git", "redis-server", "openssl"):
        if not shutil.which(exe):
            return f"testbed needs '{exe}' on PATH (apt-get install -y {exe})"
    return None


# What a test needs when it uses no fixture but Gitea: that component alone.
FORGE_ONLY = frozenset({"gitea"})
BED_FIXTURES = frozenset({"testbed_cluster", "testbed_git", "testbed_flux", "testbed_argocd"})


def needed_by(fixturenames: Collection[str]) -> Collection[str] | None:
    """The components a test's fixtures need: only Gitea's for a forge-only test, else all (None)."""
    names = set(fixturenames)
    return FORGE_ONLY if "testbed_gitea" in names and not names & BED_FIXTURES else None

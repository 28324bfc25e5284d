"""Where tests/testbed/build.py put the testbed's binaries and CRDs, and whether the testbed can run here."""

from __future__ import annotations

import shutil
from pathlib import Path


from . import build


BUILD_HINT = "python tests/testbed/build.py"


def bin_dir() -> Path:
    return build.cache_dir() / "bin"


def crd_dir() -> Path:
    return build.cache_dir() / "crds"


def missing_reason() -> str | None:
    """None when the testbed can run here; otherwise why not and how to fix it."""
    ok, missing = build.is_complete()
    if not ok:
        return f"testbed not built (missing: {', '.join(missing)} in {build.cache_dir()}); build it with: {BUILD_HINT}"
    for exe in ("git", "redis-server", "openssl"):
        if not shutil.which(exe):
            return f"testbed needs '{exe}' on PATH (apt-get install -y {exe.replace('openssl', 'openssl')})"
    return None

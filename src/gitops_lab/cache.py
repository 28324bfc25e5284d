"""The user cache: downloads gitops-lab keeps between runs (kind, engine manifests)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$GITOPS_LAB_CACHE_DIR, else $XDG_CACHE_HOME/gitops-lab, else ~/.cache/gitops-lab."""
    explicit = os.environ.get("GITOPS_LAB_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gitops-lab"

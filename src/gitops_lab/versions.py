"""Read the pinned versions (versions.yaml), the one place that pins them all."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

VERSIONS_FILE = Path(__file__).resolve().parent / "versions.yaml"


@lru_cache(maxsize=1)
def pinned() -> dict[str, Any]:
    """The parsed versions.yaml."""
    with VERSIONS_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def engine_install_url(engine: str) -> str:
    spec = pinned()[engine]
    return spec["install_url"].format(version=spec["version"])

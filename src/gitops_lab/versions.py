"""Read the pinned versions (versions.yaml), the one place that pins them all."""

from __future__ import annotations

import re
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


_PIN = re.compile(r"\$\{images\.([a-z_]+)(\.unpinned)?\}")


def expand_pins(text: str) -> str:
    """Fill in ``${images.NAME}`` (the pinned reference) and ``${images.NAME.unpinned}`` (name:tag alone).

    versions.yaml is the one home of each pin; the environments template and the
    labs name pins this way. An unknown name is left as it is.
    """
    images = pinned().get("images") or {}

    def fill(match: re.Match) -> str:
        ref = images.get(match.group(1))
        if not isinstance(ref, str):
            return match.group(0)
        return ref.split("@", 1)[0] if match.group(2) else ref

    return _PIN.sub(fill, text)


def pinned_images() -> list[str]:
    """The image references versions.yaml pins by digest: every entry of ``images`` and kind's node image."""
    images = [ref for ref in (pinned().get("images") or {}).values() if isinstance(ref, str)]
    return [*images, pinned()["kind"]["node_image"]]

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


def install_pins(engine: str, local: bool) -> tuple[str, ...] | None:
    """The SHA-256s an install manifest of ``engine`` may have; None where none is pinned for the source.

    ``install_sha256`` is the release asset at ``install_url``: every source must match it where
    versions.yaml knows it. ``module_built_sha256`` is the copy assembled from the engine's Go modules
    (the kind bed's, for an engine whose release asset is not in a module): a local copy may be it.
    A URL download of an engine whose release asset is not pinned is trusted on first use (None).
    """
    spec = pinned()[engine]
    upstream, built = spec.get("install_sha256"), spec.get("module_built_sha256")
    if upstream is None and not local:
        return None
    return tuple(d for d in (upstream, built) if d) or None


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

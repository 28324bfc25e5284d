"""Managed install: fetch the pinned release manifests, cache them, verify them.

The release manifest of each engine is downloaded once per version into the
user cache, next to a record of its SHA-256. On reuse the file is checked
against that record (and against the digest pinned in versions.yaml, where one
is pinned); a mismatch means the cache was damaged, and it is fetched again.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.cache import cache_root
from gitops_lab.errors import EngineError


def cached_manifest_path(engine: str, version: str) -> Path:
    """Where the release manifest of ``engine`` ``version`` is kept once downloaded."""
    return cache_root() / "manifests" / engine / version / "install.yaml"


@dataclass
class CachedManifest:
    path: Path
    sha256: str
    source: str  # "downloaded" or "cache"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_release(engine: str, version: str, url: str, pinned_sha256: str | None = None,
                  timeout: float = 60) -> CachedManifest:
    """The release manifest at ``url``, from the cache when it is intact."""
    target = cached_manifest_path(engine, version)
    folder, record = target.parent, target.with_name("install.yaml.json")
    if target.is_file() and record.is_file():
        data = target.read_bytes()
        recorded = json.loads(record.read_text(encoding="utf-8"))
        expected = pinned_sha256 or recorded.get("sha256")
        if recorded.get("url") == url and _digest(data) == expected:
            return CachedManifest(target, expected, "cache")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - pinned https URL
            data = response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EngineError(
            f"cannot download the {engine} {version} release manifest from {url}: {reason}",
            fix="check the network (or a proxy), or install the engine yourself and use --engine-install external",
        ) from exc
    digest = _digest(data)
    if pinned_sha256 and digest != pinned_sha256:
        raise EngineError(
            f"the {engine} {version} manifest from {url} has SHA-256 {digest}, but {pinned_sha256} is pinned",
            fix="the download was altered or the pin is wrong; retry, and report it if it persists",
        )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".yaml.part")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    record.write_text(json.dumps({"url": url, "sha256": digest}, indent=2) + "\n", encoding="utf-8")
    return CachedManifest(target, digest, "downloaded")

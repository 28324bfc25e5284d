"""Managed install: fetch the pinned release manifests, cache them, verify them.

The release manifest of each engine is downloaded once per version into the
user cache, next to a record of its SHA-256. On reuse the file is checked
against that record (and against the digest pinned in versions.yaml, where one
is pinned); a mismatch means the cache was damaged, and it is fetched again.

The source can also be a local file, or a folder holding ``<engine>/install.yaml``
(an air-gapped classroom hands the manifests out). The pin applies to every
source alike: a file that does not match the pinned digest is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_lab.cache import cache_root
from gitops_lab.downloads import accepted_digests, download_verified
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


MAX_MANIFEST_BYTES = 32 * 1024 * 1024  # Argo CD's install.yaml is ~1.5 MiB


def is_local_source(source: str) -> bool:
    return "://" not in source or source.startswith("file://")


def local_manifest(engine: str, source: str) -> Path:
    """The install.yaml a local source names: the file itself, or <folder>/<engine>/install.yaml."""
    path = Path(source.removeprefix("file://")).expanduser()
    if path.is_dir():
        path = path / engine / "install.yaml"
    if not path.is_file():
        raise EngineError(
            f"no {engine} install manifest at {path}",
            fix=f"pass the engine's install.yaml, or a folder holding {engine}/install.yaml",
        )
    return path.resolve()


def _local_url(engine: str, source: str) -> str:
    """The file:// URL of the install.yaml a local source names, once its size is that of a manifest."""
    path = local_manifest(engine, source)
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise EngineError(
            f"{path} is {size // (1024 * 1024)} MiB, too large for an install manifest",
            fix=f"pass the engine's install.yaml (under {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB)",
        )
    return path.as_uri()


def _cache_record(record: Path) -> dict[str, Any]:
    """What the cache recorded of a download; {} when the record is damaged (then the manifest is fetched again)."""
    try:
        data = json.loads(record.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def fetch_release(
    engine: str, version: str, url: str, pinned_sha256: str | Sequence[str] | None = None, timeout: float = 300
) -> CachedManifest:
    """The release manifest at ``url`` (or a local file or folder), from the cache when it is intact.

    ``pinned_sha256``: the digest, or the digests, the file must have; None: trusted on first use."""
    local = is_local_source(url)
    if local:
        url = _local_url(engine, url)
    target = cached_manifest_path(engine, version)
    record = target.with_name("install.yaml.json")
    if target.is_file() and record.is_file() and not local:
        recorded = _cache_record(record)
        expected = accepted_digests(pinned_sha256) or (recorded.get("sha256"),)
        got = _digest(target.read_bytes())
        if recorded.get("url") == url and got in expected:
            return CachedManifest(target, got, "cache")
    # A local copy goes the same way as a download: the pin applies to every source alike.
    digest = download_verified(
        url,
        target,
        f"the {engine} {version} release manifest",
        pinned_sha256,
        timeout,
        fix="check the network (or a proxy), or install the engine yourself and use --engine-install external",
    )
    record.write_text(json.dumps({"url": url, "sha256": digest}, indent=2) + "\n", encoding="utf-8")
    return CachedManifest(target, digest, "local file" if local else "downloaded")

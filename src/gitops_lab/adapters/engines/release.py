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
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.cache import cache_root
from gitops_lab.downloads import download
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


def _read_local(engine: str, source: str) -> tuple[str, bytes]:
    path = local_manifest(engine, source)
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise EngineError(
            f"{path} is {size // (1024 * 1024)} MiB, too large for an install manifest",
            fix=f"pass the engine's install.yaml (under {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB)",
        )
    return path.as_uri(), path.read_bytes()


def fetch_release(
    engine: str, version: str, url: str, pinned_sha256: str | None = None, timeout: float = 300
) -> CachedManifest:
    """The release manifest at ``url`` (or a local file or folder), from the cache when it is intact."""
    local = is_local_source(url)
    if local:
        url, data = _read_local(engine, url)
    target = cached_manifest_path(engine, version)
    record = target.with_name("install.yaml.json")
    if target.is_file() and record.is_file() and not local:
        data = target.read_bytes()
        recorded = json.loads(record.read_text(encoding="utf-8"))
        expected = pinned_sha256 or recorded.get("sha256")
        if recorded.get("url") == url and _digest(data) == expected:
            return CachedManifest(target, expected, "cache")
    if local:
        return _keep(engine, version, url, data, pinned_sha256, target, record, "local file")
    try:
        data = download(url, f"the {engine} {version} release manifest", timeout)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EngineError(
            f"cannot download the {engine} {version} release manifest from {url}: {reason}",
            fix="check the network (or a proxy), or install the engine yourself and use --engine-install external",
        ) from exc
    return _keep(engine, version, url, data, pinned_sha256, target, record, "downloaded")


def _keep(
    engine: str, version: str, url: str, data: bytes, pinned_sha256: str | None, target: Path, record: Path, source: str
) -> CachedManifest:
    """Check the pin, then keep the manifest and its record in the cache."""
    digest = _digest(data)
    if pinned_sha256 and digest != pinned_sha256:
        raise EngineError(
            f"the {engine} {version} manifest from {url} has SHA-256 {digest}, but {pinned_sha256} is pinned",
            fix="the file was altered or is another release; use the pinned release's install.yaml, "
            "and report it if a fresh download persists",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".yaml.part")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    record.write_text(json.dumps({"url": url, "sha256": digest}, indent=2) + "\n", encoding="utf-8")
    return CachedManifest(target, digest, source)

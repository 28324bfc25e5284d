"""Where the data files that ship with gitops-lab live.

In a source checkout (editable install) they are the top-level folders of the
repository; in a wheel they are copied under ``gitops_lab/_data``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from gitops_lab.cache import cache_root
from gitops_lab.versions import VERSIONS_FILE, expand_pins

_PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def data_dir(name: str) -> Path:
    """Return the shipped folder ``name`` (environments, manifests, labs)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gitops-lab data folder {name!r} is missing from this install")


def environments_source() -> Path:
    """The environments template as shipped, with ``${images.NAME}`` pins not filled in."""
    return data_dir("environments")


def environments_template() -> Path:
    """The environments template with the pins of versions.yaml filled in (rendered once into the cache)."""
    return rendered_template("environments")


def platform_template() -> Path:
    """The platform repository's template (ml-platform-pipelines), its image pins filled in."""
    return rendered_template("platform")


def rendered_template(name: str) -> Path:
    """The shipped folder ``name`` with the ``${images.NAME}`` pins of versions.yaml filled in, rendered once."""
    import hashlib
    import os
    import shutil
    import tempfile

    source = data_dir(name)
    files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256(VERSIONS_FILE.read_bytes())
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    target = cache_root() / name / digest.hexdigest()[:16]
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".render-", dir=target.parent))
    for path in files:
        dest = staging / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".yaml", ".yml"):
            dest.write_text(expand_pins(path.read_text(encoding="utf-8")), encoding="utf-8")
        else:
            shutil.copyfile(path, dest)
    try:
        os.replace(staging, target)
    except OSError:  # rendered meanwhile by another process
        shutil.rmtree(staging, ignore_errors=True)
    return target


def manifests_dir(engine: str) -> Path:
    return data_dir("manifests") / engine


def labs_dir() -> Path:
    return data_dir("labs")

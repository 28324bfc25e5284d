"""Where the data files that ship with gitops-lab live.

In a source checkout (editable install) they are the top-level folders of the
repository; in a wheel they are copied under ``gitops_lab/_data``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def data_dir(name: str) -> Path:
    """Return the shipped folder ``name`` (environments, manifests, labs)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gitops-lab data folder {name!r} is missing from this install")


def environments_template() -> Path:
    return data_dir("environments")


def manifests_dir(engine: str) -> Path:
    return data_dir("manifests") / engine


def labs_dir() -> Path:
    return data_dir("labs")

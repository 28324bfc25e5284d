"""The Git core: the seeded repository is the source of truth.

Promotion and rollback are commits with structured trailers, pushed to the
remote; rollback is a revert, never a history rewrite.

The names below load on first use: the CLI imports ``layout`` for its option
choices, and `gitops-lab --help` must not pay for the whole Git core. The
``history()`` function is not among them: its module has the same name, and a
loaded submodule shadows a lazy name; import it from ``adapters.repo.history``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitops_lab.lazy import lazy_exports

if TYPE_CHECKING:
    from gitops_lab.adapters.repo.git import Git
    from gitops_lab.adapters.repo.history import HistoryEntry
    from gitops_lab.adapters.repo.layout import ENVIRONMENTS, RepoLayout
    from gitops_lab.adapters.repo.promotion import ChangeResult, promote, revert, rollback
    from gitops_lab.adapters.repo.seed import SEED_TAG, init_working_copy

_HOMES = {
    "ENVIRONMENTS": "layout",
    "SEED_TAG": "seed",
    "ChangeResult": "promotion",
    "Git": "git",
    "HistoryEntry": "history",
    "RepoLayout": "layout",
    "init_working_copy": "seed",
    "promote": "promotion",
    "revert": "promotion",
    "rollback": "promotion",
}

__all__ = [
    "ChangeResult",
    "ENVIRONMENTS",
    "Git",
    "HistoryEntry",
    "RepoLayout",
    "SEED_TAG",
    "init_working_copy",
    "promote",
    "revert",
    "rollback",
]

__getattr__ = lazy_exports(__name__, _HOMES)

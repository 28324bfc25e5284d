"""The Git core: the seeded repository is the source of truth.

Promotion and rollback are commits with structured trailers, pushed to the
remote; rollback is a revert, never a history rewrite.
"""

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import ENVIRONMENTS, RepoLayout
from gitops_lab.adapters.repo.history import HistoryEntry, history
from gitops_lab.adapters.repo.promotion import ChangeResult, promote, revert, rollback
from gitops_lab.adapters.repo.seed import SEED_TAG, init_working_copy

__all__ = [
    "ENVIRONMENTS",
    "SEED_TAG",
    "ChangeResult",
    "Git",
    "HistoryEntry",
    "RepoLayout",
    "history",
    "init_working_copy",
    "promote",
    "revert",
    "rollback",
]

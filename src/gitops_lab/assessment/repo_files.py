"""The files of a lab repository, read from a folder or from one Git commit.

An assessment reads the same handful of files either way: the working copy as
it is (``gitops-lab design check``), or what was pushed (a lab's check, a
reviewer's ``--ref``), so a check never depends on where the files came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.snapshot import RepoSnapshot


class RepoFiles(Protocol):
    """Read-only access to the files of one repository state, by path relative to its root."""

    where: str  # what it reads, for messages: a folder, or "<ref> of <folder>"

    def read(self, path: str) -> str | None:
        """The text of ``path``; None when there is no such file. UsageError for a file that is not text."""

    def names(self, folder: str) -> list[str]:
        """The file names directly in ``folder``, sorted; empty when there is no such folder."""


def _fix(path: str) -> str:
    return f"make {path} a UTF-8 text file (or delete it), commit and push"


class FolderFiles:
    """The files of a working copy as they are on disk, uncommitted edits included."""

    def __init__(self, root: Path):
        self.root = root
        self.snapshot = RepoSnapshot.working_tree(root)
        self.where = str(root)

    def read(self, path: str) -> str | None:
        return self.snapshot.text(path, fix=_fix(path))

    def names(self, folder: str) -> list[str]:
        return self.snapshot.names(folder)


class CommitFiles:
    """The files of one commit (a branch, tag or sha) of a working copy, as Git stores them."""

    def __init__(self, git: Git, ref: str):
        self.snapshot = RepoSnapshot(git, ref)
        self.where = self.snapshot.where

    def read(self, path: str) -> str | None:
        return self.snapshot.text(path, fix=_fix(path))

    def names(self, folder: str) -> list[str]:
        return self.snapshot.names(folder)

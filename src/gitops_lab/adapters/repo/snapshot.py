"""What Git says in one repository at one ref, or in its working tree: the one reader of files at a commit.

A ``RepoSnapshot`` answers for one state of the repository: a file's bytes or
text, the files in a folder, an overlay, its model version and replicas.
Status, verify, release, promotion, the lab checks and the assessment read
Git at a ref through it; gates.yaml at a ref is ``gates.config.config_at``.

Two ways to read text, because callers need both:

- ``text``: strict. A file that is binary, not UTF-8 or too big is a
  UsageError naming the file and the commit (never a traceback).
- ``lenient_text``: a byte that is not UTF-8 shows as U+FFFD. History, status
  and rollback read overlays this way, so a stray Latin-1 byte in an old
  commit never stops a learner from going back.

Neither translates line ends: a CRLF file is read as CRLF, as Git stores it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import DEPLOYMENT, overlay_path, overlay_yaml, replicas_in_text, version_in_text
from gitops_lab.errors import NotFound, UsageError
from gitops_lab.textfiles import MAX_BYTES, read_text


def text_fix(path: str) -> str:
    """The fix for a file at a commit that is not readable text."""
    return f"make {path} a UTF-8 text file (or delete it), commit and push"


class RepoSnapshot:
    """The files of one repository at one ref (a commit, branch or tag), or in its working tree (``ref`` None).

    The ref is resolved once, so every read sees the same commit even if the
    branch moves meanwhile. NotFound when ``ref`` is not a commit.
    """

    def __init__(self, git: Git, ref: str | None = None):
        self.git = git
        self.ref = ref
        self.commit: str | None = None
        self._blobs: dict[tuple[str, int], bytes | None] = {}  # a commit's files never change: each is read once
        if ref is not None:
            found = git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).stdout.strip()
            if not found:
                raise NotFound(
                    f"{ref} is not a commit, branch or tag of {git.path}",
                    fix="name one that exists (`git log --oneline --all` lists them; fetch first for a remote branch)",
                )
            self.commit = found

    @classmethod
    def working_tree(cls, root: str | Path) -> RepoSnapshot:
        """The files of the working copy at ``root`` as they are on disk, uncommitted edits included."""
        return cls(Git(root))

    @property
    def where(self) -> str:
        """What this snapshot reads, for messages: ``<ref> (<sha>) of <folder>``, or the folder."""
        if self.commit is None:
            return str(self.git.path)
        return f"{self.ref} ({self.commit[:7]}) of {self.git.path}"

    def name(self, path: str) -> str:
        """``path`` as messages name it: ``path at <sha>`` for a commit, the path for the working tree."""
        return f"{path} at {self.commit[:7]}" if self.commit else path

    # -- files ---------------------------------------------------------------
    def data(self, path: str, what: str = "file", limit: int = MAX_BYTES, fix: str | None = None) -> bytes | None:
        """The bytes of ``path``; None when there is none. UsageError for a folder or a file over ``limit``."""
        fix = fix or text_fix(path)
        if self.commit is None:
            return self._disk_data(path, what, limit, fix)
        if (path, limit) not in self._blobs:
            self._blobs[path, limit] = self._blob(path, what, limit, fix)
        return self._blobs[path, limit]

    def _blob(self, path: str, what: str, limit: int, fix: str) -> bytes | None:
        spec = f"{self.commit}:{path}"
        # One call tells missing, folder and size apart before a blob is read whole.
        checked = self.git.run("cat-file", "--batch-check=%(objecttype) %(objectsize)", input=spec + "\n")
        kind, _, size = checked.stdout.strip().rpartition("\n")[2].partition(" ")
        if kind == "tree":
            raise UsageError(f"the {what} {self.name(path)} is a folder, not a file", fix=fix)
        if kind != "blob":  # "<spec> missing", or a submodule's commit
            return None
        if int(size) > limit:
            raise UsageError(
                f"the {what} {self.name(path)} is {int(size):,} bytes, more than the {limit:,} it may have", fix=fix
            )
        shown = self.git.run_binary("cat-file", "blob", spec)
        if shown.returncode != 0:
            return None
        return shown.stdout

    def text(self, path: str, what: str = "file", limit: int = MAX_BYTES, fix: str | None = None) -> str | None:
        """The UTF-8 text of ``path``, CRLF kept; None when there is none; UsageError naming file and commit."""
        fix = fix or text_fix(path)
        if self.commit is None:
            try:
                return read_text(self.git.path / path, what, fix=fix, limit=limit)
            except FileNotFoundError:
                return None
        data = self.data(path, what, limit, fix)
        if data is None:
            return None
        if b"\0" in data:
            raise UsageError(f"the {what} {self.name(path)} is binary, not text", fix=fix)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"the {what} {self.name(path)} is not UTF-8 text (byte {exc.start})", fix=fix) from None

    def lenient_text(self, path: str) -> str | None:
        """The text of ``path`` with any byte that is not UTF-8 as U+FFFD, CRLF kept; None when there is none."""
        data = self.data(path)
        return None if data is None else data.decode("utf-8", "replace")

    def names(self, folder: str) -> list[str]:
        """The names of the files directly in ``folder``, sorted; empty when there is no such folder."""
        if self.commit is None:
            base = self.git.path / folder
            return sorted(p.name for p in base.iterdir() if p.is_file()) if base.is_dir() else []
        listed = self.git.run("ls-tree", "-z", f"{self.commit}:{folder}", check=False)
        if listed.returncode != 0:
            return []
        # "<mode> <type> <sha>\t<name>": only blobs are files.
        entries = (entry.split("\t", 1) for entry in listed.stdout.split("\0") if "\t" in entry)
        return sorted(name for meta, name in entries if meta.split()[1] == "blob")

    # -- overlays ------------------------------------------------------------
    def overlay_text(self, env: str) -> str:
        """``env``'s kustomization as text (lenient, see the module); empty when the overlay is missing."""
        return self.lenient_text(overlay_path(env)) or ""

    def overlay(self, env: str) -> dict[str, Any]:
        """``env``'s kustomization parsed; DamagedFile naming it when it is not a mapping."""
        return overlay_yaml(self.overlay_text(env), overlay_path(env))

    def model_version(self, env: str) -> str:
        """The model version ``env``'s overlay names; DamagedFile when it names none (or the overlay is missing)."""
        return version_in_text(self.overlay_text(env), overlay_path(env))

    def replicas(self, env: str, deployment: str = DEPLOYMENT) -> int | None:
        """The replica count ``env``'s overlay sets for ``deployment``, or None when it sets none."""
        return replicas_in_text(self.overlay_text(env), deployment, overlay_path(env))

    def _disk_data(self, path: str, what: str, limit: int, fix: str) -> bytes | None:
        file = self.git.path / path
        if file.is_dir():
            raise UsageError(f"the {what} {file} is a folder, not a file", fix=fix)
        if not file.is_file():
            return None
        size = file.stat().st_size
        if size > limit:
            raise UsageError(f"the {what} {file} is {size:,} bytes, more than the {limit:,} it may have", fix=fix)
        return file.read_bytes()

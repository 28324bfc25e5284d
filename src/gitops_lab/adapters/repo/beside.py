"""Build a new working copy in a folder of the tool's own beside its target, and move it into place when done.

A `repo init` killed half-way (kill -9, power loss) must leave either nothing
at PATH or a finished working copy: a half-seeded PATH (the template copied,
no commit yet) would make every re-run refuse it as "exists and is not
empty". So the seed (or the clone) is made in ``.<name>.gitops-lab-seeding``
next to PATH (same filesystem, so each step of the final move is a rename),
marked as the tool's from its first moment, and moved into PATH only when
complete, its ``.git`` last. The next run recognises a left-over folder by
its mark: a complete seed is moved into place, anything else is removed, and
the run says which.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_lab import signals
from gitops_lab.errors import RepoStateError

#: Written first into the building folder: the folder is gitops-lab's, and for which target.
MARK = "gitops-lab-seeding"
#: Inside the building folder: the working copy being built, and (when PATH was an empty clone) PATH itself.
BUILT = "repo"
REPLACED = "replaced"
#: Written when the build is complete and its move begins: the entries on their way into the target.
MOVING = "moving"


def building_folder(target: Path) -> Path:
    return target.parent / f".{target.name}.gitops-lab-seeding"


def _is_ours(folder: Path, target: Path) -> bool:
    mark = folder / MARK
    if mark.is_file():
        return mark.read_text(encoding="utf-8", errors="replace").strip() == str(target)
    return not any(folder.iterdir())  # killed between making the folder and marking it


def settle_leftover(target: Path) -> str | None:
    """Finish or remove what a stopped earlier build left beside ``target``; a note saying which, or None.

    A build whose move had begun (``MOVING``: written only once the copy was
    complete) is moved on into place, as long as ``target`` holds nothing else;
    otherwise the folder is removed and this run builds again (an empty clone
    the build copied is still at ``target``, untouched).
    """
    folder = building_folder(target)
    if not folder.is_dir():
        return None
    if not _is_ours(folder, target):
        raise RepoStateError(
            f"{folder} is in the way of the working copy, and gitops-lab's mark in it is missing",
            fix=f"move it away or remove it (`rm -r {folder}`), then re-run",
        )
    built = folder / BUILT
    if (folder / MOVING).is_file() and (built / ".git").is_dir() and _can_take(target, folder):
        _move_into_place(folder, target)
        return f"finished moving into place the working copy an earlier, stopped `repo init` had built in {folder}"
    shutil.rmtree(folder)
    return f"removed {folder}, left unfinished by an earlier, stopped `repo init`"


def _can_take(target: Path, folder: Path) -> bool:
    """Whether ``target`` holds nothing but what the stopped move already put there (and an empty clone's .git)."""
    if not target.exists():
        return True
    ours = set((folder / MOVING).read_text(encoding="utf-8").splitlines())
    return all(entry.name in ours for entry in target.iterdir() if entry.name != ".git")


@contextmanager
def build_beside(target: Path, keep_git_of_target: bool = False) -> Iterator[Path]:
    """Yield a fresh folder to build ``target``'s working copy in; on a normal exit it moves into ``target``.

    ``keep_git_of_target``: ``target`` is an empty clone (only ``.git``, no
    commit); its ``.git`` (remote, config) is copied into the build, and set
    aside inside the marked folder at the final move. On an error or a signal
    the building folder is removed; only kill -9 can leave it behind, for
    ``settle_leftover``.
    """
    folder = building_folder(target)
    try:
        folder.mkdir(parents=True)
        (folder / MARK).write_text(f"{target}\n", encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise RepoStateError(
            f"cannot build the working copy beside {target} in {folder}: {exc.strerror or exc}",
            fix=f"move {folder} out of the way if something is there, or choose a PATH in a folder you can write to",
        ) from exc
    built = folder / BUILT
    try:
        if keep_git_of_target:
            shutil.copytree(target / ".git", built / ".git", symlinks=True)
        yield built
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    with signals.signals_held():  # Ctrl-C waits for the renames; only kill -9 can split them
        _move_into_place(folder, target)


def _move_into_place(folder: Path, target: Path) -> None:
    """Move the built copy's entries into ``target`` (each one rename), ``.git`` last, then drop the folder.

    ``target`` itself is kept, never replaced: it may be the user's (or the
    shell's) current folder. Until ``.git`` arrives, ``target`` is no working
    copy and the marked folder says what is on its way (``MOVING``), so a
    stopped move is finished by ``settle_leftover``.
    """
    built = folder / BUILT
    target.mkdir(parents=True, exist_ok=True)
    names = sorted(entry.name for entry in built.iterdir() if entry.name != ".git")
    moving = folder / MOVING
    if not moving.exists():
        moving.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    for name in names:
        os.rename(built / name, target / name)
    if (target / ".git").exists():
        os.rename(target / ".git", folder / REPLACED)  # the empty clone the build copied
    os.rename(built / ".git", target / ".git")
    shutil.rmtree(folder)

"""One release at a time: the lock every `gitops-lab release` (typed or watching) holds while it acts.

Two releases of the same lab acting at once promote, verify and revert the
same change twice, and each one's verification counts the other's requests as
its own evidence. So a release holds a lock in the environment's state folder::

    <state dir>/<name>/release.lock   flock(2) target; the kernel frees it when the holder dies
    <state dir>/<name>/release.json   who holds it (pid, host, since, command) and what it is doing

A second release refuses and names the first. A holder killed outright
(SIGKILL, a power cut) leaves ``release.json`` saying it never let go; the next
one takes the lock over and says so. What a holder was doing when it stopped
(verifying prod, rolling prod back) stays in ``release.json`` until a release
finishes it, so a release stopped mid-rollback is resumed, never forgotten.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from gitops_lab import DEFAULT_NAME
from gitops_lab.errors import ReleaseInProgress, UsageError
from gitops_lab.reporter import Reporter
from gitops_lab.signals import signals_held
from gitops_lab.state import environment_dir, write_private_json
from gitops_lab.textfiles import load_json_object


@dataclass
class Acting:
    """The release a holder was running: its trigger, version, and the step it was in."""

    trigger: str
    version: str
    step: str  # "verifying prod", "rolling prod back", ...

    def describe(self) -> str:
        return f"the release of {self.version} (trigger {self.trigger[:7]}), while {self.step}"


@dataclass
class Holder:
    pid: int
    host: str
    since: str  # ISO 8601, UTC
    command: str
    released: bool = False
    acting: Acting | None = None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.since} ({self.command})"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Holder:
        acting = data.get("acting")
        return cls(
            pid=int(data.get("pid", 0)),
            host=str(data.get("host", "?")),
            since=str(data.get("since", "?")),
            command=str(data.get("command", "?")),
            released=bool(data.get("released", False)),
            acting=Acting(**acting) if isinstance(acting, dict) else None,
        )


def _paths(name: str) -> tuple[Path, Path]:
    folder = environment_dir(name)
    return folder / "release.lock", folder / "release.json"


def read_holder(name: str = DEFAULT_NAME) -> Holder | None:
    """What ``release.json`` says: the last holder of the lock (None when no release ever ran)."""
    _, record = _paths(name)
    if not record.is_file():
        return None
    try:
        return Holder.from_dict(load_json_object(record, "release lock record", "delete it; the lock decides"))
    except (UsageError, TypeError, ValueError):
        return None  # damaged: the lock itself (flock) still decides who may act


def is_held(name: str = DEFAULT_NAME) -> bool:
    """Whether a live process holds the lock now (asked of the kernel, not of the record)."""
    lock, _ = _paths(name)
    if not lock.is_file():
        return False
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


class Journal(Protocol):
    """What a release records while it acts, for a successor if it stops: the host's lock file
    (``ReleaseLock``) or the in-cluster automation's Lease (``workflows/release_lease.py``)."""

    interrupted: Acting | None

    def acting(self, trigger: str, version: str, step: str) -> None: ...

    def finished(self) -> None: ...


class ReleaseLock:
    """The lock, held: records what the release is doing, for a successor if this process dies."""

    def __init__(self, name: str, holder: Holder, interrupted: Acting | None):
        self.name, self.holder = name, holder
        #: What a previous holder left unfinished (to be resumed by this one), else None.
        self.interrupted = interrupted

    def acting(self, trigger: str, version: str, step: str) -> None:
        self.holder.acting = Acting(trigger, version, step)
        self._save()

    def finished(self) -> None:
        """The release reached an end (verified, rolled back, refused): nothing to resume."""
        self.holder.acting = None
        self.interrupted = None
        self._save()

    def _save(self) -> None:
        write_private_json(_paths(self.name)[1], asdict(self.holder), mode=0o644)


@contextmanager
def release_lock(name: str, command: str, reporter: Reporter) -> Iterator[ReleaseLock]:
    """Hold the release lock of environment ``name`` for the block, or raise ReleaseInProgress naming its holder."""
    lock_path, _ = _paths(name)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # Held open for the whole block: closing it (or dying) frees the lock.
    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = read_holder(name)
            who = other.describe() if other else "another process"
            doing = f", running {other.acting.describe()}" if other and other.acting else ""
            raise ReleaseInProgress(
                f"another release acts on this lab: {who}{doing}",
                fix="let it finish (`gitops-lab release status` shows it), or stop it (Ctrl-C in its terminal, "
                f"or `kill {other.pid if other else 'PID'}`) and run this again",
            ) from None
        previous = read_holder(name)
        if previous is not None and not previous.released:
            reporter.warn(
                f"taking over the release lock of {previous.describe()}: that process is gone without letting go"
            )
        interrupted = previous.acting if previous else None
        holder = Holder(
            pid=os.getpid(),
            host=socket.gethostname(),
            since=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            command=command,
            acting=interrupted,  # still unfinished until a release finishes it
        )
        held = ReleaseLock(name, holder, interrupted)
        held._save()
        try:
            yield held
        finally:
            # A clean exit, even by a signal: the lock is let go, what was being done stays recorded.
            holder.released = True
            with signals_held():  # a second Ctrl-C or a hangup cannot leave the record half-said
                held._save()
    finally:
        handle.close()

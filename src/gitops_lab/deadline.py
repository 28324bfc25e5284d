"""One deadline per command: every wait below it takes what time is left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def describe(self) -> str:
        """``2m`` or ``45s``: the deadline as people say it."""
        seconds = int(round(self.seconds))
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 120 else f"{seconds}s"


# The deadline of the command that is running, for calls made far below the CLI
# (git's fetch and push) that have no deadline handed to them.
_command_deadline: ContextVar[Deadline | None] = ContextVar("gitops_lab_command_deadline", default=None)


@contextmanager
def command_deadline(seconds: float) -> Iterator[Deadline]:
    """Make one deadline of ``seconds`` the command's, for everything run inside the block."""
    deadline = Deadline(seconds)
    token = _command_deadline.set(deadline)
    try:
        yield deadline
    finally:
        _command_deadline.reset(token)


@contextmanager
def command_deadline_unless_set(seconds: float) -> Iterator[Deadline]:
    """The running command's deadline when it has one; else a new one of ``seconds``, as ``command_deadline``."""
    running = current_deadline()
    if running is not None:
        yield running
        return
    with command_deadline(seconds) as deadline:
        yield deadline


#: What the reads that explain a timeout already reached (the namespace's warning events) may take:
#: they run after the command's deadline passed, and an error that says why is worth these seconds.
EXPLAIN_SECONDS = 5.0


@contextmanager
def explaining_a_timeout(seconds: float = EXPLAIN_SECONDS) -> Iterator[Deadline]:
    """A short deadline of its own for the calls that explain a timeout the command already reached."""
    with command_deadline(seconds) as deadline:
        yield deadline


def current_deadline() -> Deadline | None:
    """The running command's deadline, if it set one with ``command_deadline``."""
    return _command_deadline.get()


def within_deadline(seconds: float) -> float:
    """``seconds``, or what is left of the running command's deadline when that is less (0 once it passed)."""
    deadline = current_deadline()
    return seconds if deadline is None else min(seconds, deadline.remaining())

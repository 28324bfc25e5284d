"""SIGINT and SIGTERM end a command the same way: clean up, one line, exit 130 or 143.

Python turns SIGINT into KeyboardInterrupt; ``sigterm_like_sigint`` makes
SIGTERM raise ``Terminated``, a KeyboardInterrupt, so every clean-up written
for Ctrl-C also runs when the process is terminated.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM."""


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal number, as shells report it: 143 for SIGTERM, 130 for SIGINT."""
    return 128 + signal_number(interrupt)


def signal_number(interrupt: KeyboardInterrupt) -> int:
    return int(signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def signal_name(interrupt: KeyboardInterrupt) -> str:
    return "SIGTERM" if isinstance(interrupt, Terminated) else "SIGINT (Ctrl-C)"


def _raise_terminated(signum, frame) -> None:  # the signal handler's signature
    raise Terminated()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_like_sigint() -> Iterator[None]:
    """Inside the block, SIGTERM raises Terminated (only the main thread can set handlers)."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_held() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM while a clean-up runs, so a second Ctrl-C cannot cut it short."""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

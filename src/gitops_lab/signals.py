"""Every way a session ends stops a command the same way: clean up, one line, exit 128 + the signal.

Python turns SIGINT into KeyboardInterrupt; ``sigterm_like_sigint`` makes
SIGTERM, SIGHUP (the terminal closed, an ssh connection dropped) and SIGQUIT
raise ``Terminated``, a KeyboardInterrupt, so every clean-up written for
Ctrl-C also runs then: the working copy put back, the commit on a backup ref.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


#: The signals that end a session besides SIGINT: handled like Ctrl-C.
ENDING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM, SIGHUP or SIGQUIT (``signum``)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal number, as shells report it: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + signal_number(interrupt)


def signal_number(interrupt: KeyboardInterrupt) -> int:
    return int(interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def signal_name(interrupt: KeyboardInterrupt) -> str:
    if not isinstance(interrupt, Terminated):
        return "SIGINT (Ctrl-C)"
    name = signal.Signals(interrupt.signum).name
    return f"{name} (the terminal closed)" if name == "SIGHUP" else name


def _raise_terminated(signum, frame) -> None:  # the signal handler's signature
    raise Terminated(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_like_sigint() -> Iterator[None]:
    """Inside the block, SIGTERM, SIGHUP and SIGQUIT raise Terminated (only the main thread can set handlers)."""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_terminated) for sig in ENDING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def signals_held() -> Iterator[None]:
    """Ignore the ending signals while a clean-up runs, so a second Ctrl-C (or a hangup) cannot cut it short."""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, *ENDING)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

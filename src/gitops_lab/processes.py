"""Run a program so that it always ends: within a timeout, and with us on Ctrl-C.

The program gets its own process group. On timeout or interrupt the whole
group (git and the helpers it starts: remote-http, ssh, receive-pack, hooks)
gets SIGTERM, which lets git remove its lock files, and SIGKILL shortly after.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

GRACE_SECONDS = 3.0


def run_bounded(
    cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    binary: bool = False,
) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(capture_output=True, text=True)``; raises subprocess.TimeoutExpired.

    With ``binary`` the output is bytes as the program wrote them (no decoding, no newline translation).
    """
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=not binary,
        # A byte that is not UTF-8 (a Latin-1 overlay in an old commit, a file name) must not
        # make the output unreadable: it shows as U+FFFD, the rest of the output stays usable.
        errors=None if binary else "replace",
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except BaseException:
        _end_group(proc)
        raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode, stdout, stderr)


@dataclass
class CappedRun:
    """What ``run_capped`` saw: ``overflowed`` when a stream passed its limit (the program was then stopped)."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    overflowed: bool = False


def run_capped(
    cmd: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    limit: int = 64 * 1024,
) -> CappedRun:
    """Run a program we did not write (a custom gate) with bounded time and memory.

    Each of stdout and stderr is read up to ``limit`` bytes; a program that
    prints more is stopped at once rather than buffered (``yes`` fills memory
    long before any timeout). Raises subprocess.TimeoutExpired on timeout and
    OSError when the program cannot be started.
    """
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    ends = None if timeout is None else time.monotonic() + timeout
    chunks: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
    overflowed = False
    try:
        with selectors.DefaultSelector() as selector:
            assert proc.stdout is not None and proc.stderr is not None
            selector.register(proc.stdout, selectors.EVENT_READ, 1)
            selector.register(proc.stderr, selectors.EVENT_READ, 2)
            while selector.get_map() and not overflowed:
                left = None if ends is None else ends - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(list(cmd), timeout or 0.0)
                for key, _ in selector.select(left):
                    data = os.read(key.fd, 65536)
                    if not data:
                        selector.unregister(key.fileobj)
                        continue
                    chunks[key.data] += data
                    if len(chunks[key.data]) > limit:
                        overflowed = True
        if overflowed:
            _end_group(proc)
        else:
            left = None if ends is None else max(0.0, ends - time.monotonic())
            proc.wait(timeout=left)
    except BaseException:
        _end_group(proc)
        raise
    finally:
        for stream in (proc.stdout, proc.stderr):
            if stream and not stream.closed:
                stream.close()
    return CappedRun(proc.returncode, bytes(chunks[1][:limit]), bytes(chunks[2][:limit]), overflowed)


def _end_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGTERM:
                # git is gone; helpers it left in the group go too.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            break
        except subprocess.TimeoutExpired:
            continue
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream:
            stream.close()

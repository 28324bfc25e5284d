"""Run a program so that it always ends: within a timeout, and with us on Ctrl-C.

The program gets its own process group. On timeout or interrupt the whole
group (git and the helpers it starts: remote-http, ssh, receive-pack, hooks)
gets SIGTERM, which lets git remove its lock files, and SIGKILL shortly after.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

GRACE_SECONDS = 3.0


def run_bounded(
    cmd: Sequence[str], env: Mapping[str, str] | None = None, input: str | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(capture_output=True, text=True)``; raises subprocess.TimeoutExpired."""
    proc = subprocess.Popen(
        list(cmd),
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except BaseException:
        _end_group(proc)
        raise
    return subprocess.CompletedProcess(list(cmd), proc.returncode, stdout, stderr)


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

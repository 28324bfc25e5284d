"""The testbed's component processes: started in their own process groups, logged, stopped, measured;
free loopback ports; waits on a condition."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterable


KEEP_ENV = "GITOPS_LAB_TESTBED_KEEP"


class TestbedError(RuntimeError):
    """A testbed component failed to start, died, or a wait ran out."""

    __test__ = False  # not a test class


ALL_PROCS: list["Proc"] = []
LOG_DIRS: list[Path] = []
_PORTS_GIVEN: set[int] = set()


def _stop_leftovers_at_exit() -> None:
    """Last resort when a session ends without its fixtures' teardown (an
    interrupted run): no component outlives the Python process that started
    it, unless GITOPS_LAB_TESTBED_KEEP asks for that."""
    if os.environ.get(KEEP_ENV, "") not in ("", "0", "false", "no"):
        return
    for p in reversed(ALL_PROCS):
        if p.alive():
            p.stop(timeout=5)


atexit.register(_stop_leftovers_at_exit)


def free_port() -> int:
    """A free TCP port on 127.0.0.1, not handed out before in this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise TestbedError("no free loopback port found")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(data.splitlines()[-lines:])


class Proc:
    """One component process, in its own process group, logging to a file."""

    def __init__(
        self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ):
        self.name = name
        self.args = [str(a) for a in args]
        self.log = log_dir / f"{name}.log"
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        full_env = dict(os.environ)
        full_env.update(self.env or {})
        with self.log.open("ab") as fh:
            fh.write(f"\n===== {time.strftime('%H:%M:%S')} start: {' '.join(self.args)}\n".encode())
            fh.flush()
            self.popen = subprocess.Popen(
                self.args,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=self.cwd,
                start_new_session=True,
            )
        ALL_PROCS.append(self)
        return self

    @property
    def pid(self) -> int:
        """The process id; every caller holds a started process (an alive one, or one in a stack)."""
        if self.popen is None:
            raise TestbedError(f"testbed component {self.name} was never started")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        if self.popen is None:
            raise TestbedError(f"{self.name} was never started")
        rc = self.popen.poll()
        if rc is not None:
            raise TestbedError(
                f"testbed component {self.name} (pid {self.popen.pid}) has exited with "
                f"code {rc}; log {self.log}, last lines:\n{tail(self.log)}"
            )

    def stop(self, timeout: float = 10) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # the whole group, including any child it started, goes
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)

    def rss(self) -> int:
        return group_rss(self.popen.pid) if self.popen is not None and self.alive() else 0

    def group_alive(self) -> bool:
        """Whether any process of this component's group is still there."""
        if self.popen is None:
            return False
        if self.popen.poll() is None:
            return True
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _group_members(pgid: int):
    """(/proc/<pid>, the fields of its stat after the command name) of each process in a group."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:  # state, ppid, pgrp, ...
                yield d, fields
        except (OSError, ValueError, IndexError):
            continue


def group_rss(pgid: int) -> int:
    """Resident memory (bytes) of every process in a process group."""
    total = 0
    for d, _fields in _group_members(pgid):
        try:
            for line in (d / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by every process in a process group."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _d, fields in _group_members(pgid))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until(
    what: str,
    fn: Callable[[], object],
    timeout: float,
    health: Callable[[], None] | None = None,
    interval: float = 0.25,
    max_interval: float = 2.0,
):
    """Poll fn until it returns a truthy value; bounded by timeout. The health
    callable runs each round, so a dead process fails the wait at once. The
    interval grows from ``interval`` to ``max_interval``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        if health:
            health()
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # remembered for the message
            last = exc
        if time.monotonic() > deadline:
            raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)


def http_ok(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3, context=ctx) as r:  # loopback
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def stop_all(procs: Iterable[Proc], ports: Iterable[int] = ()) -> list[str]:
    """Stop processes (in the order given); return problems found afterwards."""
    procs = list(procs)
    for p in procs:
        p.stop()
    problems = [f"{p.name} (pid {p.pid}) still running" for p in procs if p.group_alive()]
    for port in ports:
        ok = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if port_is_free(port):
                ok = True
                break
            time.sleep(0.2)
        if not ok:
            problems.append(f"port {port} still in use")
    return problems


def keep() -> bool:
    """GITOPS_LAB_TESTBED_KEEP asks to leave the testbed running after the session."""
    return os.environ.get(KEEP_ENV, "") not in ("", "0", "false", "no")


def log_tails(lines: int = 30) -> str:
    """The last lines of every testbed log, for a failing test's report."""
    out = []
    for d in LOG_DIRS:
        for log in sorted(d.glob("*.log")):
            out.append(f"----- {log} (last {lines} lines) -----\n{tail(log, lines)}")
    return "\n".join(out)


def stray_processes() -> list[str]:
    return [f"{p.name} (pid {p.pid})" for p in ALL_PROCS if p.group_alive()]

"""Fault injection for the Git-write tests: hooks in real remotes, a server that
accepts and never answers, the CLI as a real process to signal."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .gitutil import git

BACKUP_RE = re.compile(r"refs/gitops-lab/backup/[A-Za-z0-9._-]+")
#: Generous bound for "the command ends": far above what any of these runs takes.
ENDS_WITHIN = 90


def install_hook(repo: Path, name: str, body: str) -> Path:
    """A shell hook in ``repo`` (a bare remote, or a working copy's .git)."""
    hooks = repo / "hooks" if (repo / "hooks").is_dir() and not (repo / ".git").exists() else repo / ".git" / "hooks"
    hook = hooks / name
    hook.write_text("#!/bin/sh\n" + body + "\n")
    hook.chmod(0o755)
    return hook


def race_once_before_push(wc: Path, body: str) -> Path:
    """A pre-push hook in the working copy ``wc`` that runs ``body`` on the first push only: another
    copy's change lands between the command's fetch and its push (a race the command then meets)."""
    marker = wc / ".git" / "raced"
    return install_hook(wc, "pre-push", f"[ -e '{marker}' ] && exit 0\ntouch '{marker}'\n{body}")


def refusing_hook(remote: Path, words: str) -> Path:
    """pre-receive that refuses every push, explaining why in its own words."""
    return install_hook(remote, "pre-receive", f"cat >/dev/null\necho '{words}' >&2\nexit 1")


def stalling_hook(repo: Path, name: str, marker: Path) -> Path:
    """A hook that says it started (``marker``) and then hangs until it is killed."""
    return install_hook(repo, name, f"cat >/dev/null 2>&1 || true\ntouch '{marker}'\nexec sleep 600")


def backup_in(line: str) -> str:
    found = BACKUP_RE.findall(line)
    assert found, f"no backup ref named in: {line}"
    return found[-1]


def snapshot(wc: Path, remote: Path) -> tuple[str, str, str]:
    """(local HEAD, remote main, local status): what must agree after a fault."""
    return git(wc, "rev-parse", "HEAD"), git(remote, "rev-parse", "main"), git(wc, "status", "--porcelain")


def no_lock_files(remote: Path) -> bool:
    return not [p for p in remote.rglob("*.lock")]


def cli_process(
    args: list[str], state_dir: Path, cwd: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`gitops-lab ARGS` as its own process group, the way a terminal starts it."""
    env = {**os.environ, "GITOPS_LAB_STATE_DIR": str(state_dir), **(extra_env or {})}
    env.pop("GITOPS_LAB_REPO", None)
    return subprocess.Popen(
        [sys.executable, "-m", "gitops_lab", *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def marked_processes(mark: str) -> list[str]:
    """The live processes whose environment carries ``mark`` (every child a marked CLI started, in any
    session or process group, reparented or not), as "PID COMMAND LINE"; zombies are not running, so left out.
    A scan of /proc: Linux only."""
    needle = mark.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or another user's
            continue
        if state != "Z":
            found.append(f"{entry.name} {command}")
    return found


def run_cli(args: list[str], state_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    return finish(cli_process(args, state_dir, **kwargs), f"`gitops-lab {' '.join(args)}`")


def finish(proc: subprocess.Popen, what: str) -> subprocess.CompletedProcess:
    """Collect ``proc``'s end; fail (and kill it) if it does not end within ENDS_WITHIN."""
    try:
        out, err = proc.communicate(timeout=ENDS_WITHIN)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"{what} did not end within {ENDS_WITHIN}s") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def signal_when(proc: subprocess.Popen, marker: Path, sig: int) -> subprocess.CompletedProcess:
    """Wait until ``marker`` appears (a hook started), send ``sig`` to the process group, collect the end."""
    return act_when(proc, marker, lambda: os.killpg(proc.pid, sig), "the signalled command")


def act_when(
    proc: subprocess.Popen, marker: Path, action: Callable[[], None], what: str = "the command"
) -> subprocess.CompletedProcess:
    """Wait until ``marker`` appears (a hook started), run ``action`` (a fault: a signal, a server killed),
    collect the command's end."""
    limit = time.monotonic() + ENDS_WITHIN
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the command ended before the hook ran ({proc.returncode}): {err}")
        assert time.monotonic() < limit, "the hook never started"
        time.sleep(0.05)
    action()
    return finish(proc, what)


class SilentServer:
    """A TCP server on loopback that accepts every connection and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lab.git"

    @property
    def git_url(self) -> str:
        """The same silence as a `git://` remote (git's own protocol, as `git daemon` serves it)."""
        return f"git://127.0.0.1:{self.port}/lab.git"

    def http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._closing:  # close()'s wake-up call
                conn.close()
                return
            self.accepted.append(conn)

    def close(self) -> None:
        """Stop the accepting thread, then release the socket.

        Closing the socket under a thread blocked in accept() is not enough: the
        next test's listening socket gets the same descriptor number, and when a
        signal (a child's SIGCHLD) restarts that accept(), it takes a connection
        meant for the new server, which dies with this object: the client sees
        "Connection reset by peer". So wake the thread with a connection of our
        own and wait for it to end before the descriptor is freed.
        """
        self._closing = True
        with socket.create_connection(("127.0.0.1", self.port), timeout=ENDS_WITHIN):
            pass
        self._thread.join(ENDS_WITHIN)
        assert not self._thread.is_alive(), "the silent server's accepting thread did not end"
        self.sock.close()
        for conn in self.accepted:
            conn.close()

"""The tests' one home for a Git server: ``git_server(protocol, root)`` starts one for a test and
stops it after; each has ``url(repo)`` (a clone URL) and ``stop()``.

- ``"http"``: ``GitHttpServer``, `git http-backend` behind a threaded HTTP server on 127.0.0.1;
- ``"git"``: ``GitDaemon``, `git daemon` (``git://``), pushes enabled;
- ``"forge"``: ``Forge``, the testbed's Gitea (built and started by tests/testbed/forge.py; the
  ``testbed_gitea`` fixture is the session's one), its API at ``.gitea.url``.

``GitHttpServer`` is the one server for every test that needs Git over HTTP:

- it serves a folder of bare repositories (``url("NAME.git")``, or OWNER/REPO.git
  paths as GitLab and GitHub lay them out: the kind of server
  adapters/gitserver/folder.py names, "any `git http-backend`");
- ``hold_pushes`` makes it take a push's whole request, say so (``push_started``)
  and wait until ``release`` before it hands the push to git: so a test can end
  the client while the push is in flight, then let the server finish it after the
  client has gone, as real HTTP servers do;
- ``read_only`` refuses pushes (403);
- ``create_repo(NAME)`` makes an empty bare repository and gives its clone URL
  (the testbed's Git server, for the engines, is this one: tests/testbed/fixtures.py);
- a large push arrives chunked, as git sends it past http.postBuffer; with
  ``log_path`` each request and what http-backend said go to that file;
- it answers GitLab's raw-file route, GET /OWNER/REPO/-/raw/REF/PATH, with the file
  at that ref (`git show`), which gitlab-ci-local asks before it includes a CI/CD
  component.

``RunningServer`` is the other side: the product's own in-cluster Git server
(manifests/gitserver/server.py, basic auth, per-user repositories) run here as a
local process, for the tests of that server and of a class's users.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import unquote, urlsplit

from gitops_lab.adapters.gitserver.incluster import manifests_folder

if TYPE_CHECKING:
    from testbed.forge import Gitea

HOLD_SECONDS = 60
DAEMON_READY_WITHIN = 30
SERVER_PY = manifests_folder() / "server.py"  # the in-cluster server's program


def _request_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body: git sends a large push chunked (past http.postBuffer), else with a Content-Length."""
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    body = bytearray()
    while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
        body += handler.rfile.read(size)
        handler.rfile.readline()  # the CRLF after each chunk
    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
        pass  # trailers
    return bytes(body)


class GitHttpServer:
    def __init__(self, root: Path, read_only: bool = False, log_path: Path | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        self.log_path = log_path  # the backend's complaints and each request, when given (the testbed's log)
        self.hold_pushes = False
        self.push_started = threading.Event()
        self.release = threading.Event()
        self.push_finished = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # the http.server name
                server._serve(self, b"")

            def do_POST(self):  # the http.server name
                server._serve(self, _request_body(self))

            def log_message(self, format, *args):  # the http.server signature
                server._log(f"{self.address_string()} {format % args}")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="git-http", daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def create_repo(self, name: str) -> str:
        """An empty bare repository NAME.git (default branch main), if there is none yet; its clone URL."""
        name = name.removesuffix(".git")
        path = self.root / f"{name}.git"
        if not path.exists():
            subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
            subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
        return self.url(f"{name}.git")

    def check_health(self) -> None:
        if not self.thread.is_alive():
            raise RuntimeError("the Git HTTP server's thread is not running")

    def _log(self, line: str) -> None:
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(line + "\n")

    def _serve(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        url = urlsplit(handler.path)
        if "/-/raw/" in url.path:
            self._raw(handler, url.path)
            return
        pushing = url.path.endswith("/git-receive-pack") or "git-receive-pack" in url.query
        if pushing and self.read_only:
            handler.send_error(403, "read-only")
            return
        if pushing and handler.command == "POST" and self.hold_pushes:
            self.push_started.set()
            self.release.wait(HOLD_SECONDS)
        self._cgi(handler, unquote(url.path), url.query, body)
        if pushing and handler.command == "POST":
            self.push_finished.set()

    def _cgi(self, handler: BaseHTTPRequestHandler, path: str, query: str, body: bytes) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "tester",  # http-backend takes pushes only from a known user
            "REMOTE_ADDR": handler.client_address[0],
            "REQUEST_METHOD": handler.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": handler.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": handler.headers.get("Git-Protocol", ""),
        }
        try:
            done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            handler.send_error(504, "git http-backend timed out")
            return
        if done.stderr:
            self._log(f"http-backend ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
        # CGI headers end at a blank line, CRLF or a bare LF (git writes either).
        parts = re.split(rb"\r?\n\r?\n", done.stdout, maxsplit=1)
        if len(parts) != 2:
            handler.send_error(500, "git http-backend failed")
            return
        head, payload = parts
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key and key.lower() != "content-length":  # _send counts the payload itself
                headers.append((key.strip(), value.strip()))
        self._send(handler, status, payload, headers)

    def _raw(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        project, _, rest = path.strip("/").partition("/-/raw/")
        ref, _, file = rest.partition("/")
        proc = subprocess.run(
            ["git", "--git-dir", str(self.root / f"{project}.git"), "show", f"{ref}:{file}"],
            capture_output=True,
            timeout=60,
        )
        found = proc.returncode == 0
        self._send(handler, 200 if found else 404, proc.stdout if found else b"not found\n", [])

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: list[tuple[str, str]]) -> None:
        try:  # the client may have gone: a push is done all the same
            handler.send_response(status)
            for key, value in headers:
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class GitDaemon:
    """A real `git://` remote: `git daemon` on a free loopback port, serving a folder of bare repositories,
    pushes enabled (`--enable=receive-pack`)."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={root}",
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
                str(root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        limit = time.monotonic() + DAEMON_READY_WITHIN
        while True:  # ready when it accepts a connection
            assert self.proc.poll() is None, "git daemon ended at start"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < limit, "git daemon never listened"
                time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Forge:
    """The testbed's Gitea as a Git server: ``url("OWNER/REPO.git")`` clones over HTTP; ``gitea`` is the
    instance (its API at ``gitea.url``, its CLI, its webhook deliveries)."""

    def __init__(self, gitea: "Gitea"):
        self.gitea = gitea

    def url(self, name: str) -> str:
        return f"{self.gitea.url}/{name}"

    def stop(self) -> None:
        problems = self.gitea.stop()
        assert problems == [], f"Gitea did not stop cleanly: {problems}"


class GitServer(Protocol):
    """What ``git_server`` yields, whatever the protocol."""

    def url(self, name: str) -> str: ...

    def stop(self) -> None: ...


def start_forge(root: Path, logs: Path) -> "Gitea":
    """The testbed's Gitea in ``root`` (logs in ``logs``), its API answering; the caller stops it."""
    from testbed.forge import start_gitea  # the testbed's build: imported only by the tests that start one

    return start_gitea(root, logs)


@contextmanager
def git_server(protocol: Literal["http", "git", "forge"], root: Path, **options) -> Iterator[GitServer]:
    """A Git server over ``protocol`` for one test, serving bare repositories in ``root`` (the forge keeps
    its own under ``root``), stopped after it. ``options`` go to ``GitHttpServer`` (``read_only``,
    ``log_path``)."""
    server: GitServer
    if protocol == "http":
        server = GitHttpServer(root, **options)
    elif protocol == "git":
        server = GitDaemon(root)
    elif protocol == "forge":
        server = Forge(start_forge(root, root / "logs"))
    else:
        raise ValueError(f"no Git server for protocol {protocol!r}: http, git or forge")
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    def __init__(self, root: Path, users_file: Path, port: int, repos: str = "lab"):
        self.root, self.users_file, self.port, self.repos = root, users_file, port, repos
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(
            os.environ,
            GIT_ROOT=str(self.root),
            GIT_REPOS=self.repos,
            AUTH_FILE=str(self.users_file),
            PORT=str(self.port),
        )
        # A log file, not a pipe: the server logs every request, and a pipe nobody reads fills
        # up (64 KiB) and blocks every request thread of a busy server.
        self.log = self.root.parent / f"gitserver-{self.port}.log"
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(SERVER_PY)], env=env, stderr=log)
        deadline = time.monotonic() + 30
        while True:  # poll the readiness endpoint under one deadline, as the kubelet would
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"http://{auth}127.0.0.1:{self.port}/lab.git"

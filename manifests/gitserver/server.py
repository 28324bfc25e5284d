#!/usr/bin/env python3
"""The lab's Git server: `git http-backend` behind a small HTTP server with basic auth.

Standard library only (Python 3.9+), so a stock image with git and python3
runs it straight from a ConfigMap. Smart HTTP only: Flux and Argo CD fetch
over http(s), and learners clone and push with plain git.

Environment:
  GIT_ROOT    folder holding the bare repositories (on the PersistentVolume)
  GIT_REPOS   comma-separated repository names created at start if missing
  AUTH_FILE   lines "user:role:salt:pbkdf2-sha256-hex[:repo,repo...]"; role is
              "write" or "read"; with the last field the user reaches only the
              repositories it names (a classroom learner: their own)
  PORT        port to listen on (default 8080)

Every Git request needs a valid user; pushing needs the "write" role. GET
/healthz answers without auth once the repositories exist (for probes).
Repositories that appear in GIT_ROOT later are served too, and AUTH_FILE is
read again when it changes, so a class can grow without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

PBKDF2_ROUNDS = 100_000
REPO_PATH = re.compile(r"^/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?(?P<rest>/.*)?$")
MAX_BODY = 512 * 1024 * 1024


def hash_password(password: str, salt: str, rounds: int = PBKDF2_ROUNDS) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds).hex()


class Users:
    """The auth file, with verified credentials cached (PBKDF2 is slow on purpose)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._load()

    def _load(self) -> None:
        entries: dict[str, tuple[str, str, str, frozenset[str] | None]] = {}
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith("#"):
                    user, role, salt, digest, *repos = line.split(":", 4)
                    entries[user] = (
                        role,
                        salt,
                        digest,
                        frozenset(r for r in repos[0].split(",") if r) if repos else None,
                    )
        self.entries = entries
        self._verified: dict[str, str] = {}
        self._mtime = os.stat(self.path).st_mtime

    def _reload_if_changed(self) -> None:
        try:
            changed = os.stat(self.path).st_mtime != self._mtime
        except OSError:
            return
        if changed:
            with self._lock:
                self._load()

    def role(self, header: str | None, repo: str | None = None) -> str | None:
        """The role of the user in an Authorization header for ``repo``: None when the
        credentials are not valid, "" when they are but the user may not use ``repo``."""
        self._reload_if_changed()
        if not header or not header.startswith("Basic "):
            return None
        token = header[6:].strip()
        with self._lock:
            if token in self._verified:
                return self._role_for(self._verified[token], repo)
        try:
            user, _, password = base64.b64decode(token).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        entry = self.entries.get(user)
        if entry is None:
            return None
        _role, salt, digest, _repos = entry
        if not hmac.compare_digest(hash_password(password, salt), digest):
            return None
        with self._lock:
            self._verified[token] = user
        return self._role_for(user, repo)

    def _role_for(self, user: str, repo: str | None) -> str | None:
        entry = self.entries.get(user)
        if entry is None:
            return None
        role, _salt, _digest, repos = entry
        return role if repos is None or repo is None or repo in repos else ""


def ensure_repos(root: str, names: list[str]) -> None:
    os.makedirs(root, exist_ok=True)
    for name in names:
        path = os.path.join(root, f"{name}.git")
        if os.path.isdir(os.path.join(path, "objects")):
            continue
        subprocess.run(["git", "init", "--quiet", "--bare", path], check=True)
        for key, value in (
            ("http.receivepack", "true"),
            ("receive.denyNonFastForwards", "true"),
            ("receive.denyDeletes", "true"),
            ("core.sharedRepository", "group"),
        ):
            subprocess.run(["git", "--git-dir", path, "config", key, value], check=True)
        # HEAD names main before the first push, so clones check out main.
        subprocess.run(["git", "--git-dir", path, "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
        print(f"created repository {path}", file=sys.stderr, flush=True)


def read_chunked(rfile, out) -> int:
    """Copy a chunked request body to ``out``; returns its length."""
    total = 0
    while True:
        size_line = rfile.readline(1024)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return total
        total += size
        if total > MAX_BODY:
            raise ValueError("request body too large")
        remaining = size
        while remaining:
            data = rfile.read(min(remaining, 65536))
            if not data:
                raise ValueError("request body cut short")
            out.write(data)
            remaining -= len(data)
        rfile.readline(1024)  # CRLF after each chunk


class GitHandler(BaseHTTPRequestHandler):
    server_version = "gitops-lab-git/1"
    users: Users
    root: str
    repos: list[str]

    def do_GET(self) -> None:
        if self.path == "/healthz":
            ready = all(os.path.isdir(os.path.join(self.root, f"{r}.git")) for r in self.repos)
            self._plain(200 if ready else 503, "ok\n" if ready else "repositories missing\n")
            return
        self._git()

    def do_POST(self) -> None:
        self._git()

    def _plain(self, code: int, text: str, extra: dict[str, str] | None = None) -> None:
        body = text.encode()
        self.send_response(code)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _git(self) -> None:
        url = urlsplit(self.path)
        match = REPO_PATH.match(unquote(url.path))
        if not match or not self._exists(match["repo"]):
            self._plain(404, "no such repository\n")
            return
        role = self.users.role(self.headers.get("Authorization"), match["repo"])
        if role is None:
            self._plain(401, "authentication required\n", {"WWW-Authenticate": 'Basic realm="gitops-lab"'})
            return
        if not role:
            self._plain(403, f"this user may not use the repository {match['repo']}\n")
            return
        pushing = "service=git-receive-pack" in url.query or url.path.endswith("/git-receive-pack")
        if pushing and role != "write":
            self._plain(403, "this user may only read\n")
            return
        with tempfile.TemporaryFile() as body:
            try:
                length = self._read_body(body)
            except ValueError as exc:
                self._plain(400, f"{exc}\n")
                return
            body.seek(0)
            self._run_backend(match["repo"], match["rest"] or "/", url.query, body, length, role)

    def _exists(self, repo: str) -> bool:
        return repo in self.repos or os.path.isdir(os.path.join(self.root, f"{repo}.git", "objects"))

    def _read_body(self, out) -> int:
        if self.command != "POST":
            return 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return read_chunked(self.rfile, out)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        remaining = length
        while remaining:
            data = self.rfile.read(min(remaining, 65536))
            if not data:
                raise ValueError("request body cut short")
            out.write(data)
            remaining -= len(data)
        return length

    def _run_backend(self, repo: str, rest: str, query: str, body, length: int, role: str) -> None:
        user = self.users_name()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "GIT_PROJECT_ROOT": self.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{repo}.git{rest}",
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_USER": user,
            "REMOTE_ADDR": self.client_address[0],
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.0",
            # Repositories on a volume may belong to another uid than the server's.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
        }
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[var] = self.headers[header]
        proc = subprocess.Popen(["git", "http-backend"], stdin=body, stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        status, headers = 200, []
        while True:
            line = proc.stdout.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        shutil.copyfileobj(proc.stdout, self.wfile, 65536)
        proc.wait()

    def users_name(self) -> str:
        header = self.headers.get("Authorization", "")
        try:
            return base64.b64decode(header[6:].strip()).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return "unknown"


def stop(signum: int, _frame: object) -> None:
    # In a container the server is PID 1, which the kernel gives no default action for
    # SIGTERM: without this the kubelet waits out the whole grace period before a kill.
    print(f"stopping on signal {signum}", file=sys.stderr, flush=True)
    raise SystemExit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    root = os.environ.get("GIT_ROOT", "/data/repos")
    repos = [r.strip() for r in os.environ.get("GIT_REPOS", "lab").split(",") if r.strip()]
    ensure_repos(root, repos)
    GitHandler.users = Users(os.environ.get("AUTH_FILE", "/etc/gitserver/users"))
    GitHandler.root = root
    GitHandler.repos = repos
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("", port), GitHandler)
    print(f"serving {', '.join(repos)} from {root} on port {port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

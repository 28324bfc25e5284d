"""A Git server over smart HTTP on loopback, for the engines and the CLI to clone from and push to."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


from .processes import TestbedError


# Git over smart HTTP
class _GitHandler(http.server.BaseHTTPRequestHandler):
    server_version = "gitops-lab-testbed-git/1"
    root: Path = Path("/nonexistent")

    def log_message(self, fmt, *args):  # quiet; errors go to the log file
        log = getattr(self.server, "log_path", None)
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write("%s %s\n" % (self.address_string(), fmt % args))

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._body() if self.command == "POST" else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "testbed",  # enables receive-pack (push)
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        try:
            r = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            self.send_error(504, "git http-backend timed out")
            return
        out = r.stdout
        sep = out.find(b"\r\n\r\n")
        seplen = 4
        if sep < 0 or (out.find(b"\n\n") >= 0 and out.find(b"\n\n") < sep):
            sep, seplen = out.find(b"\n\n"), 2
        if sep < 0:
            self.log_message("http-backend failed (%s): %s", r.returncode, r.stderr.decode(errors="replace"))
            self.send_error(500, "git http-backend failed")
            return
        head, payload = out[:sep].decode("latin-1"), out[sep + seplen :]
        status, headers = 200, []
        for line in head.splitlines():
            if not line.strip():
                continue
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            else:
                headers.append((k.strip(), v.strip()))
        if r.stderr:
            self.log_message("http-backend: %s", r.stderr.decode(errors="replace").strip())
        self.send_response(status)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _cgi
    do_POST = _cgi


class _GitHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class GitServer:
    """Smart-HTTP Git server on 127.0.0.1 (git http-backend), push allowed."""

    def __init__(self, root: Path, log_path: Path | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._srv = _GitHTTPServer(("127.0.0.1", 0), _GitHandler)
        self._srv.root = self.root
        self._srv.log_path = log_path
        self.port = self._srv.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._srv.serve_forever, name="testbed-git", daemon=True)

    def start(self) -> "GitServer":
        self._thread.start()
        return self

    def create_repo(self, name: str) -> str:
        """Create an empty bare repository (default branch main); return its clone URL."""
        name = name.removesuffix(".git")
        path = self.root / f"{name}.git"
        if not path.exists():
            subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
            subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
        return f"{self.base_url}/{name}.git"

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(10)

    def check_health(self) -> None:
        if not self._thread.is_alive():
            raise TestbedError("the testbed Git server thread is not running")

"""Loopback HTTP servers that serve fixed bodies and record what was asked for."""

from __future__ import annotations

import http.server
import threading


class FilesServer:
    """Serves ``files`` (path -> body); any other path answers 404. ``requests`` lists the paths asked for."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # the http.server name
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class OneFileServer(FilesServer):
    """Serves one body at ``path`` (its ``url``) and counts the requests."""

    def __init__(self, body: bytes, path: str = "/install.yaml"):
        super().__init__({path: body})
        self.url = self.base + path

    @property
    def hits(self) -> int:
        return len(self.requests)

"""A loopback proxy in front of Gitea's API that holds or cuts off one call, deterministically: the tests of
faults around a pull request's operations (a client killed meanwhile, an answer lost, Gitea killed meanwhile)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class ForgeProxy:
    """Forwards Gitea's API; ``hold`` (a method and path ending) is never forwarded (a marker file says it came),
    ``cut`` is forwarded to Gitea and its answer dropped (the connection closed).

    Without ``then``, a held call waits until ``stop`` (the client is killed meanwhile); with it, ``then()``
    runs once the call came (held: before Gitea saw it; cut: after Gitea answered) and the connection is
    closed at once, unanswered: e.g. Gitea killed at that moment."""

    def __init__(self, upstream: str, marker: Path):
        self.upstream, self.marker = upstream, marker
        self.hold: tuple[str, str] | None = None
        self.cut: tuple[str, str] | None = None
        self.then: Callable[[], None] | None = None
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                call = (self.command, self.path.split("?")[0])
                if proxy.hold and call[0] == proxy.hold[0] and call[1].endswith(proxy.hold[1]):
                    proxy.fault()
                    self.close_connection = True
                    return
                req = urllib.request.Request(proxy.upstream + self.path, data=body, method=self.command)
                for name in ("Authorization", "Content-Type", "Accept"):
                    if self.headers.get(name):
                        req.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        status, data = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                except OSError:  # Gitea down: the client sees its connection closed unanswered, as Gitea's own
                    self.close_connection = True
                    return
                # only an answer saying it was done is dropped (Gitea may first answer "try again later")
                if proxy.cut and call[0] == proxy.cut[0] and call[1].endswith(proxy.cut[1]) and status < 300:
                    proxy.fault()
                    self.close_connection = True
                    return  # Gitea did it; its answer never reaches the client
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fault(self) -> None:
        self.marker.touch()
        if self.then is None:
            self.release.wait(120)  # the client is killed meanwhile
            return
        then, self.then, self.hold, self.cut = self.then, None, None, None  # once
        then()

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def proxied_lab(gitea, cli, tmp_path: Path, creds: Path, learner: str, reviewer: str, prefix: str):
    """A lab on ``gitea`` (a testbed Gitea) whose forge URL (`repo init --forge-url`) is a ForgeProxy in front of
    it, its Git remote Gitea itself, main protected (dev and staging plain pushes), and staging promoted to v2:
    (working copy, repository name, proxy, the learner's API straight to Gitea). Stop the proxy after."""
    from gitops_lab.adapters.forge.gitea import BranchRule, GiteaAPI
    from gitops_lab.adapters.forge.seed import LabRepository, load_or_create_accounts

    repo = f"{prefix}-{tmp_path.name[-12:].replace('_', '-').strip('-')}"
    accounts = load_or_create_accounts(creds, learner=learner, reviewers=(reviewer,))
    gitea.seed_lab(accounts, LabRepository(repo))
    proxy = ForgeProxy(gitea.url, tmp_path / "held")
    wc = tmp_path / "wc"
    remote = f"{gitea.url}/{learner}/{repo}.git"
    init = cli("repo", "init", str(wc), "--remote", remote, "--forge-url", proxy.url, "--forge-credentials", str(creds))
    assert init.exit_code == 0, init.output
    gitea.seed_lab(accounts, LabRepository(repo, rule=BranchRule(push_files="overlays/dev/**;overlays/staging/**")))
    staged = cli("promote", "--to", "staging", "--no-wait")
    assert staged.exit_code == 0, staged.output
    return wc, repo, proxy, GiteaAPI(gitea.url, accounts.learner)

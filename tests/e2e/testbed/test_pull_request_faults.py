"""Faults around the pull request's operations, against the testbed's real Gitea reached through a loopback proxy
that holds or cuts off one API call: a promote killed (SIGKILL, a real CLI process) between its branch push and
opening its pull request is finished by the re-run, which reuses the branch and opens one pull request; a merge whose
answer is lost is asked about and reported merged.

The session's Gitea is shared by every test: the accounts here are this module's own."""

from __future__ import annotations

import signal
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers.faults import cli_process, run_cli, signal_when
from helpers.gitutil import git

from gitops_lab.adapters.forge.gitea import BranchRule, GiteaAPI
from gitops_lab.adapters.forge.seed import LabRepository, gitea_cli_admin_creator, load_or_create_accounts, seed_lab
from gitops_lab.state import state_root

LEARNER, REVIEWER = "rbf-lea", "rbf-rev"


class ForgeProxy:
    """Forwards Gitea's API; ``hold`` (a method and path ending) is never answered (a marker file says it came),
    ``cut`` is forwarded to Gitea and its answer dropped (the connection closed)."""

    def __init__(self, upstream: str, marker: Path):
        self.upstream, self.marker = upstream, marker
        self.hold: tuple[str, str] | None = None
        self.cut: tuple[str, str] | None = None
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                call = (self.command, self.path.split("?")[0])
                if proxy.hold and call[0] == proxy.hold[0] and call[1].endswith(proxy.hold[1]):
                    proxy.marker.touch()
                    proxy.release.wait(120)  # the client is killed meanwhile
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
                # only an answer saying it was done is dropped (Gitea may first answer "try again later")
                if proxy.cut and call[0] == proxy.cut[0] and call[1].endswith(proxy.cut[1]) and status < 300:
                    proxy.marker.touch()
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

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rbf") / "forge-credentials.json"
    load_or_create_accounts(path, learner=LEARNER, reviewers=(REVIEWER,), admin="rbf-admin", engine="rbf-engine")
    return path


@pytest.fixture
def proxied_lab(testbed_gitea, cli, tmp_path, creds):
    """A lab on Gitea whose forge URL (`repo init --forge-url`) is the proxy; its Git remote is Gitea itself."""
    repo = f"rbf-{tmp_path.name[-12:].replace('_', '-').strip('-')}"
    accounts = load_or_create_accounts(creds, learner=LEARNER, reviewers=(REVIEWER,))
    create = gitea_cli_admin_creator(testbed_gitea.cli())
    seed_lab(testbed_gitea.url, accounts, create, LabRepository(repo))
    proxy = ForgeProxy(testbed_gitea.url, tmp_path / "held")
    wc = tmp_path / "wc"
    remote = f"{testbed_gitea.url}/{LEARNER}/{repo}.git"
    init = cli("repo", "init", str(wc), "--remote", remote, "--forge-url", proxy.url, "--forge-credentials", str(creds))
    assert init.exit_code == 0, init.output
    rule = BranchRule(push_files="overlays/dev/**;overlays/staging/**")
    seed_lab(testbed_gitea.url, accounts, create, LabRepository(repo, rule=rule))
    assert cli("promote", "--to", "staging", "--no-wait").exit_code == 0
    yield wc, repo, proxy, GiteaAPI(testbed_gitea.url, accounts.learner)
    proxy.stop()


def test_a_promote_killed_before_opening_its_pull_request_is_finished_once_by_the_rerun(proxied_lab):
    wc, repo, proxy, api = proxied_lab
    head = git(wc, "rev-parse", "HEAD")
    proxy.hold = ("POST", f"/repos/{LEARNER}/{repo}/pulls")
    killed = signal_when(cli_process(["promote", "--to", "prod", "--no-wait"], state_root()), proxy.marker, 9)
    assert killed.returncode == -signal.SIGKILL
    pushed = api.call("GET", f"/repos/{LEARNER}/{repo}/branches/promote%2Fprod-v2")["commit"]["id"]
    assert api.pull_requests(LEARNER, repo, state="all") == []  # what kill -9 leaves: the branch, no pull request
    assert git(wc, "rev-parse", "HEAD") == head

    proxy.hold = None
    again = run_cli(["promote", "--to", "prod", "--no-wait"], state_root())
    assert again.returncode == 0, again.stderr
    assert f"reusing promote/prod-v2 ({pushed[:7]}), pushed by an earlier run" in again.stderr + again.stdout
    [pr] = api.pull_requests(LEARNER, repo, state="all")
    assert (pr.head, pr.head_sha, pr.state) == ("promote/prod-v2", pushed, "open")  # the same commit, no second one
    assert f"opened #{pr.number}" in again.stdout
    assert git(wc, "rev-parse", "HEAD") == head

    third = run_cli(["promote", "--to", "prod", "--no-wait"], state_root())
    assert third.returncode == 0 and f"pull request is open: #{pr.number}" in third.stdout
    assert len(api.pull_requests(LEARNER, repo, state="all")) == 1


def test_a_merge_whose_answer_is_lost_is_asked_about_and_reported_merged(proxied_lab, cli):
    wc, repo, proxy, api = proxied_lab
    assert cli("promote", "--to", "prod", "--no-wait").exit_code == 0
    assert cli("approve", "--env", "prod", "--version", "v2", "--by", REVIEWER).exit_code == 0
    [pr] = api.pull_requests(LEARNER, repo, state="open")
    proxy.cut = ("POST", f"/pulls/{pr.number}/merge")

    merged = cli("promote", "--to", "prod", "--no-wait")
    assert proxy.marker.exists()  # Gitea merged; the answer was dropped
    assert merged.exit_code == 0, merged.output
    assert f"merged pull request #{pr.number} (approved by {REVIEWER}): prod now runs v2 (was v1)" in merged.stdout
    done = api.pull_request(LEARNER, repo, pr.number)
    assert done.merged and git(wc, "rev-parse", "HEAD") == git(wc, "rev-parse", "origin/main") == done.merge_sha
    assert "v2" in (wc / "overlays/prod/kustomization.yaml").read_text()
    again = cli("promote", "--to", "prod", "--no-wait")
    assert again.exit_code == 0 and "prod already runs v2" in again.stdout

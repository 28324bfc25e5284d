"""The forge adapter when Gitea is down, silent, failing or not ready yet (issue 20's faults).

Real loopback sockets stand in for a broken Gitea (nothing of urllib is replaced): a closed port
(down), a socket that accepts connections and never answers (hung, or its process stopped), a server
that answers 5xx, one that hangs up mid-answer (killed during a push or a merge). A private Gitea of
the testbed seeded before it listens: tests/e2e/testbed/test_forge_faults_testbed.py.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gitops_lab.adapters.forge.gitea import Account, GiteaAPI
from gitops_lab.adapters.forge.seed import LabRepository, load_or_create_accounts, seed_lab, wait_until_ready
from gitops_lab.deadline import command_deadline
from gitops_lab.errors import ForgeError, WaitTimeout

LEARNER = Account("learner", "pw", "learner@x.invalid")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _answering(status: int, body: bytes, delay: float = 0.0, port: int = 0) -> Iterator[str]:
    """An HTTP server on loopback answering every request with ``status`` and ``body``, listening after ``delay``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    port = port or _closed_port()
    # listening before the caller asks, unless told to start late
    servers = [] if delay else [http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)]

    def serve() -> None:
        if not servers:
            time.sleep(delay)
            servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler))
        servers[0].serve_forever(poll_interval=0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        thread.join(5)


@contextmanager
def _silent() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog) and never reads or answers: a hung Gitea."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


@contextmanager
def _hanging_up() -> Iterator[str]:
    """A server that reads the request and closes the connection without an answer: Gitea killed mid-request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_gitea_that_is_down_is_one_error_naming_its_url_and_the_fix():
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ForgeError) as info:
        GiteaAPI(url, LEARNER).call("GET", "/user")
    assert info.value.message.startswith(f"cannot reach Gitea at {url} (GET /user)")
    assert "refused" in info.value.message.lower()
    assert "run the command again" in (info.value.fix or "") and f"{url}/api/healthz" in (info.value.fix or "")


def test_a_silent_gitea_ends_by_the_commands_deadline_with_one_error():
    with _silent() as url, command_deadline(1.5), pytest.raises(ForgeError) as info:
        GiteaAPI(url, LEARNER).call("POST", "/repos/learner/lab/pulls/1/merge", {"do": "merge"})
    assert info.value.message.startswith(f"Gitea at {url} did not answer POST /repos/learner/lab/pulls/1/merge")
    assert "hung" in (info.value.fix or "") and "run the command again" in (info.value.fix or "")
    assert "\n" not in info.value.message


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_gitea_answering_5xx_is_one_error_with_its_status_message_and_the_fix(status):
    body = json.dumps({"message": "database is\nlocked"}).encode()
    with _answering(status, body) as url, command_deadline(10), pytest.raises(ForgeError) as info:
        GiteaAPI(url, LEARNER).call("GET", "/repos/learner/lab")
    assert info.value.message == f"Gitea at {url} failed GET /repos/learner/lab ({status}): database is locked"
    assert info.value.status == status
    assert "wait" in (info.value.fix or "") and "Gitea's log" in (info.value.fix or "")


def test_a_4xx_is_still_gitea_refusing_the_request():
    with _answering(422, b'{"message": "approve your own pull is not allowed"}') as url, command_deadline(10):
        with pytest.raises(ForgeError) as info:
            GiteaAPI(url, LEARNER).call("POST", "/repos/learner/lab/pulls/1/reviews", {"event": "APPROVED"})
    assert info.value.message.startswith("Gitea refused POST /repos/learner/lab/pulls/1/reviews (422)")
    assert info.value.status == 422


def test_a_gitea_killed_mid_request_is_one_error_saying_to_run_again():
    with _hanging_up() as url, command_deadline(10), pytest.raises(ForgeError) as info:
        GiteaAPI(url, LEARNER).call("POST", "/repos/learner/lab/pulls/1/merge", {"do": "merge"})
    assert info.value.message.startswith(
        f"Gitea at {url} broke off its answer to POST /repos/learner/lab/pulls/1/merge"
    )
    assert "reads what Gitea already has first" in (info.value.fix or "")


def test_something_else_than_gitea_answering_200_is_named():
    with _answering(200, b"<html>a proxy's page</html>") as url, command_deadline(10):
        with pytest.raises(ForgeError) as info:
            GiteaAPI(url, LEARNER).call("GET", "/user")
    assert info.value.message == f"what answers at {url} is not Gitea's API (GET /user returned no JSON)"
    assert "--forge-url" in (info.value.fix or "")


def test_seeding_a_gitea_that_never_gets_ready_says_so_by_the_deadline(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    accounts = load_or_create_accounts(tmp_path / "forge-credentials.json")
    made: list[str] = []
    with command_deadline(2), pytest.raises(WaitTimeout) as info:
        seed_lab(url, accounts, lambda admin: made.append(admin.username), LabRepository("lab"))
    assert info.value.message.startswith(f"Gitea at {url} is not ready (cannot reach Gitea at {url}")
    assert "run the command again" in (info.value.fix or "")
    assert made == []  # nothing was asked of a Gitea that is not there


def test_a_silent_or_failing_gitea_is_not_ready():
    with _silent() as url, command_deadline(2), pytest.raises(WaitTimeout) as info:
        wait_until_ready(url)
    assert info.value.message.startswith(f"Gitea at {url} is not ready (Gitea at {url} did not answer GET /api/healthz")
    with _answering(503, b'{"status": "fail"}') as url, command_deadline(2), pytest.raises(WaitTimeout) as info:
        wait_until_ready(url)
    assert info.value.message.startswith(f"Gitea at {url} is not ready (Gitea at {url} failed GET /api/healthz (503)")


def test_a_gitea_that_starts_listening_later_is_waited_for():
    port = _closed_port()
    with command_deadline(30), _answering(200, b'{"status": "pass"}', delay=1.0, port=port) as url:
        wait_until_ready(url)  # returns once it answers; before, the port refuses connections
        assert GiteaAPI(url, LEARNER).ready() is None

"""Downloads (kind, engine manifests) end by the command's deadline, whatever the server does."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from helpers.faults import SilentServer
from helpers.httpserve import OneFileServer

from gitops_lab.downloads import download
from gitops_lab.errors import WaitTimeout
from gitops_lab.kube.deadline import command_deadline


class DrippingServer:
    """Sends headers for a large body, then one byte every 0.2 s: no single read ever times out."""

    def __init__(self):
        stop = self.stop_event = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # the http.server name
                self.send_response(200)
                self.send_header("Content-Length", str(10**6))
                self.end_headers()
                while not stop.is_set():
                    try:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.2)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/kind"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_download_returns_the_whole_body():
    server = OneFileServer(b"kind: Config\n" * 10_000)
    try:
        with command_deadline(30):
            assert download(server.url, "a manifest", 60) == b"kind: Config\n" * 10_000
    finally:
        server.stop()


def test_a_server_that_never_answers_ends_at_the_command_deadline():
    server = SilentServer()
    try:
        with command_deadline(1.5), pytest.raises(WaitTimeout) as caught:
            download(server.url, "kind", 300)
    finally:
        server.close()
    assert f"downloading kind from {server.url} did not finish within" in caught.value.message
    assert "--timeout" in caught.value.fix


def test_a_server_that_drips_bytes_forever_ends_at_the_command_deadline():
    """Each read gets a byte in time, so only a bound on the whole transfer ends it."""
    server = DrippingServer()
    try:
        with command_deadline(2), pytest.raises(WaitTimeout, match="did not finish within 2s"):
            download(server.url, "kind", 300)
    finally:
        server.stop()


def test_a_download_after_the_deadline_passed_is_not_started():
    server = OneFileServer(b"x")
    try:
        with command_deadline(0), pytest.raises(WaitTimeout):
            download(server.url, "kind", 300)
        assert server.hits == 0
    finally:
        server.stop()


def test_kind_is_not_started_once_the_deadline_passed(tmp_path):
    from gitops_lab.adapters.cluster.kind import KindBinary, KindCluster, KindSettings

    ran = tmp_path / "ran"
    fake = tmp_path / "kind"
    fake.write_text(f"#!/bin/sh\ntouch {ran}\n")
    fake.chmod(0o755)
    cluster = KindCluster(KindSettings(name="lab"), tmp_path)
    cluster._kind = KindBinary(fake, "v0.30.0", "PATH")
    with command_deadline(0), pytest.raises(WaitTimeout, match="did not finish within 0s"):
        cluster._run("get", "clusters", doing="list the kind clusters")
    assert not ran.exists()


def test_docker_is_not_asked_once_the_deadline_passed(monkeypatch):
    """Docker (pull, save) works under the same deadline: past it, no client is even made."""
    import docker

    from gitops_lab.adapters.docker import docker_client

    made = []
    monkeypatch.setattr(docker, "from_env", lambda **kwargs: made.append(kwargs))
    with command_deadline(0), pytest.raises(WaitTimeout, match="deadline passed before Docker was asked"):
        docker_client()
    assert made == []


def test_docker_save_is_not_started_once_the_deadline_passed(tmp_path, monkeypatch):
    from gitops_lab.adapters import images

    ran = tmp_path / "ran"
    fake = tmp_path / "docker"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {ran}\n')
    fake.chmod(0o755)
    monkeypatch.setattr(images.shutil, "which", lambda name: str(fake))
    with command_deadline(0), pytest.raises(WaitTimeout, match="docker save"):
        images.save_images(["python:3.12"], tmp_path / "images.tar", "linux/amd64")
    calls = ran.read_text().splitlines() if ran.exists() else []
    assert not [call for call in calls if " -o " in f" {call} "], calls  # at most `save --help` ran

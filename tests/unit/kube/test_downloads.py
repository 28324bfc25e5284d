"""Downloads (kind, engine manifests) end by the command's deadline, whatever the server does, and a pinned
file reaches its place only whole and verified (``download_verified``), against a real loopback HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from helpers.faults import SilentServer
from helpers.httpserve import FilesServer, OneFileServer

from gitops_lab.downloads import download, download_verified
from gitops_lab.errors import DownloadError, WaitTimeout
from gitops_lab.deadline import command_deadline


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


# --------------------------------------------------------------------------- #
# download_verified: the one way a pinned file reaches the cache
# --------------------------------------------------------------------------- #
BODY = b"#!/bin/sh\necho kind\n" * 5_000
GOOD = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def release():
    server = FilesServer({"/kind": BODY})
    yield server
    server.stop()


def _left_in(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_a_verified_download_lands_whole_with_its_mode(release, tmp_path):
    target = tmp_path / "cache" / "kind" / "v0.30.0" / "kind"
    with command_deadline(30):
        digest = download_verified(release.base + "/kind", target, "kind", GOOD, 60, mode=0o755)
    assert digest == GOOD and target.read_bytes() == BODY
    assert target.stat().st_mode & 0o777 == 0o755
    assert _left_in(target.parent) == ["kind"]  # no temporary file beside it


def test_a_file_with_the_wrong_hash_is_refused_and_leaves_nothing_behind(release, tmp_path):
    target = tmp_path / "cache" / "kind" / "v0.30.0" / "kind"
    with pytest.raises(DownloadError) as caught:
        download_verified(release.base + "/kind", target, "kind", "0" * 64, 60)
    line = caught.value.one_line()
    assert "\n" not in line
    assert f"expected SHA-256 {'0' * 64}, got {GOOD}" in line and release.base + "/kind" in line
    assert "run the command again" in line
    assert not (tmp_path / "cache").exists()  # not the file, its temporary copy, nor the folders made for it


def test_a_refused_download_keeps_the_file_already_in_place(release, tmp_path):
    target = tmp_path / "kind"
    target.write_bytes(b"the kind that works")
    with pytest.raises(DownloadError):
        download_verified(release.base + "/kind", target, "kind", "0" * 64, 60)
    assert target.read_bytes() == b"the kind that works" and _left_in(tmp_path) == ["kind"]


def test_a_404_names_the_status_and_the_callers_fix_and_leaves_nothing(release, tmp_path):
    target = tmp_path / "cache" / "kind"
    with pytest.raises(DownloadError) as caught:
        download_verified(release.base + "/nope", target, "kind", GOOD, 60, fix="put kind on PATH")
    assert caught.value.message == f"cannot download kind from {release.base}/nope: the server answered 404 Not Found"
    assert caught.value.fix == "put kind on PATH"
    assert not (tmp_path / "cache").exists()


def test_an_unreachable_server_is_a_download_error_not_a_traceback(tmp_path):
    closed = FilesServer({})
    closed.stop()  # nothing listens on its port any more
    with pytest.raises(DownloadError, match=f"cannot download kind from {closed.base}/kind: "):
        download_verified(closed.base + "/kind", tmp_path / "kind", "kind", GOOD, 60)
    assert _left_in(tmp_path) == []


@pytest.mark.parametrize("stalling", [SilentServer, DrippingServer], ids=["silent", "dripping"])
def test_a_stalled_verified_download_ends_at_the_deadline_and_leaves_nothing(stalling, tmp_path):
    server = stalling()
    try:
        with command_deadline(1.5), pytest.raises(WaitTimeout, match="did not finish within"):
            download_verified(server.url, tmp_path / "cache" / "kind", "kind", GOOD, 300)
    finally:
        if isinstance(server, DrippingServer):
            server.stop()
        else:
            server.close()
    assert not (tmp_path / "cache").exists()


def test_a_local_copy_is_checked_the_same_way(tmp_path):
    local = tmp_path / "classroom" / "install.yaml"
    local.parent.mkdir()
    local.write_bytes(BODY)
    target = tmp_path / "cache" / "install.yaml"
    assert download_verified(local.as_uri(), target, "the manifest", GOOD, 60) == GOOD
    with pytest.raises(DownloadError, match="is not the pinned file"):
        download_verified(local.as_uri(), tmp_path / "other" / "install.yaml", "the manifest", "0" * 64, 60)
    assert target.read_bytes() == BODY and not (tmp_path / "other").exists()


def test_nothing_pinned_still_lands_whole_and_returns_the_digest_to_record(release, tmp_path):
    assert download_verified(release.base + "/kind", tmp_path / "kind", "kind", None, 60) == GOOD


def test_kind_is_not_started_once_the_deadline_passed(tmp_path):
    from gitops_lab.adapters.cluster.kind_binary import KindBinary
    from gitops_lab.adapters.cluster.kind_config import KindSettings
    from gitops_lab.adapters.cluster.kind_provider import KindCluster

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

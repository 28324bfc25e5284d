"""The in-cluster Git server: rendered manifests, credentials, and the server itself.

The server (manifests/gitserver/server.py) runs here as a real local process
with the real git client and `git http-backend`: clone, push, auth, a large
(chunked) push, and data kept across a restart. The manifests are applied to
the testbed in test_gitserver_testbed.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.gitserver.credentials import credentials_path, load_or_create_credentials
from gitops_lab.adapters.gitserver.incluster import (
    GitServerSettings,
    InClusterGitServer,
    auth_file,
    render_manifests,
)
from helpers.gitservers import SERVER_PY, RunningServer, free_port
from helpers.gitutil import make_commit, run_git


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def by_kind(objects):
    return {o["kind"]: o for o in objects}


# --------------------------------------------------------------------------- #
# Manifests and credentials
# --------------------------------------------------------------------------- #
def test_credentials_are_generated_once_with_0600_and_reused(state):
    first = load_or_create_credentials("lab1")
    path = credentials_path("lab1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_credentials("lab1") == first
    assert load_or_create_credentials("lab2") != first  # per environment
    assert first.writer.password != first.reader.password and len(first.writer.password) >= 20


def test_rendered_objects_in_apply_order(state):
    objects = InClusterGitServer("lab").manifests()
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Namespace", "gitops-lab-git"),
        ("Secret", "gitserver-users"),
        ("ConfigMap", "gitserver-code"),
        ("PersistentVolumeClaim", "gitserver-data"),
        ("Service", "gitserver"),
        ("Deployment", "gitserver"),
    ]
    assert all(o["metadata"].get("namespace") in (None, "gitops-lab-git") for o in objects)


def test_secret_holds_hashes_not_passwords(state):
    server = InClusterGitServer("lab")
    creds = server.credentials()
    users = by_kind(server.manifests())["Secret"]["stringData"]["users"]
    assert creds.writer.password not in users and creds.reader.password not in users
    assert [line.split(":")[:2] for line in users.splitlines()] == [["learner", "write"], ["engine", "read"]]


def test_rendering_twice_is_identical_so_reapplying_changes_nothing(state):
    server = InClusterGitServer("lab")
    assert server.manifests() == server.manifests()


def test_deployment_is_pinned_small_and_on_a_volume(state):
    deployment = by_kind(InClusterGitServer("lab").manifests())["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "@sha256:" in container["image"]
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Mi") and int(limit[:-2]) < 200
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "gitserver-data"}} in pod["volumes"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_service_nodeport_matches_the_kind_port_mapping(state):
    settings = GitServerSettings(ports=LabPorts(git_host=9999, git_node=31234))
    server = InClusterGitServer("lab", settings)
    service = by_kind(server.manifests())["Service"]
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 31234
    assert server.endpoints().host_url == "http://localhost:9999/lab.git"
    assert server.endpoints().cluster_url == "http://gitserver.gitops-lab-git.svc.cluster.local:8080/lab.git"


def test_config_hash_changes_when_the_users_change(state):
    a = load_or_create_credentials("a")
    b = load_or_create_credentials("b")
    hash_of = lambda creds: by_kind(render_manifests(GitServerSettings(), auth_file(creds)))["Deployment"][  # noqa: E731
        "spec"
    ]["template"]["metadata"]["annotations"]["gitops-lab.io/config-hash"]
    assert hash_of(a) != hash_of(b)


# --------------------------------------------------------------------------- #
# The server, for real
# --------------------------------------------------------------------------- #
@pytest.fixture
def server(tmp_path, state):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    creds = load_or_create_credentials("lab")
    users = tmp_path / "users"
    users.write_text(auth_file(creds))
    running = RunningServer(tmp_path / "repos", users, free_port())
    running.start()
    running.creds = creds
    yield running
    running.stop()


def test_writer_pushes_and_reader_clones(server, tmp_path):
    w, r = server.creds.writer, server.creds.reader
    work = tmp_path / "work"
    run_git("init", "-q", "-b", "main", str(work))
    make_commit(work, "README.md", "hello\n")
    run_git("push", "-q", server.url(w.username, w.password), "main", cwd=work)
    clone = tmp_path / "clone"
    run_git("clone", "-q", server.url(r.username, r.password), str(clone))
    assert (clone / "README.md").read_text() == "hello\n"
    assert run_git("rev-parse", "--abbrev-ref", "HEAD", cwd=clone).stdout.strip() == "main"


def test_reader_cannot_push(server, tmp_path):
    r = server.creds.reader
    work = tmp_path / "work"
    run_git("init", "-q", "-b", "main", str(work))
    make_commit(work, "a.txt", "a")
    done = run_git("push", server.url(r.username, r.password), "main", cwd=work, check=False)
    assert done.returncode != 0
    assert "403" in done.stderr


@pytest.mark.parametrize("user, password", [(None, None), ("learner", "wrong"), ("nobody", "x")])
def test_clone_without_valid_credentials_is_refused(server, tmp_path, user, password):
    done = run_git("clone", server.url(user, password), str(tmp_path / "c"), check=False)
    assert done.returncode != 0
    assert "Authentication failed" in done.stderr or "could not read Username" in done.stderr


def test_force_push_is_refused_so_history_is_never_rewritten(server, tmp_path):
    w = server.creds.writer
    work = tmp_path / "work"
    run_git("init", "-q", "-b", "main", str(work))
    make_commit(work, "a.txt", "a")
    make_commit(work, "b.txt", "b")
    run_git("push", "-q", server.url(w.username, w.password), "main", cwd=work)
    run_git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    make_commit(work, "c.txt", "c")
    done = run_git("push", "--force", server.url(w.username, w.password), "main", cwd=work, check=False)
    assert done.returncode != 0
    assert "non-fast-forward" in done.stderr or "denying non-fast-forward" in done.stderr


def test_large_push_uses_chunked_encoding_and_arrives_whole(server, tmp_path):
    w = server.creds.writer
    work = tmp_path / "work"
    run_git("init", "-q", "-b", "main", str(work))
    blob = os.urandom(3 * 1024 * 1024)  # incompressible, above git's 1 MiB postBuffer
    make_commit(work, "model.bin", blob)
    run_git("-c", "http.postBuffer=65536", "push", "-q", server.url(w.username, w.password), "main", cwd=work)
    clone = tmp_path / "clone"
    run_git("clone", "-q", server.url(w.username, w.password), str(clone))
    assert (clone / "model.bin").read_bytes() == blob


def test_pushed_data_survives_a_restart(server, tmp_path):
    w = server.creds.writer
    work = tmp_path / "work"
    run_git("init", "-q", "-b", "main", str(work))
    make_commit(work, "a.txt", "kept")
    run_git("push", "-q", server.url(w.username, w.password), "main", cwd=work)
    server.stop()
    server.start()  # same data folder, as the pod restarts on the same volume
    clone = tmp_path / "clone"
    run_git("clone", "-q", server.url(w.username, w.password), str(clone))
    assert (clone / "a.txt").read_text() == "kept"


def test_healthz_needs_no_auth_and_unknown_repos_are_404(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz") as r:
        assert r.read() == b"ok\n"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/other.git/info/refs?service=git-upload-pack")
    assert err.value.code == 404


def test_up_waits_until_the_git_server_answers_on_the_host_port_and_no_longer(tmp_path, monkeypatch):

    from helpers.httpserve import OneFileServer

    from gitops_lab.adapters.cluster.base import LabPorts
    from gitops_lab.adapters.gitserver.incluster import GitServerSettings, InClusterGitServer
    from gitops_lab.errors import WaitTimeout
    from gitops_lab.deadline import Deadline

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    served = OneFileServer(b"ok", path="/healthz")
    try:
        port = int(served.url.split(":")[2].split("/")[0])
        InClusterGitServer("t", GitServerSettings(ports=LabPorts(git_host=port))).wait_reachable_from_host(Deadline(10))
        assert served.hits == 1
    finally:
        served.stop()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    seen = []
    server = InClusterGitServer("t", GitServerSettings(ports=LabPorts(git_host=free)))
    with pytest.raises(WaitTimeout) as err:
        server.wait_reachable_from_host(Deadline(1.5), on_progress=seen.append)
    assert f"http://localhost:{free}/healthz did not answer before the deadline" in err.value.message
    assert seen and "waiting for" in seen[0]


def test_git_authenticates_only_inside_the_authenticated_block(server):
    """The credentials are a record scoped to the block: nothing reaches the process environment."""
    from gitops_lab.adapters.repo.git import PASSWORD_VAR, USERNAME_VAR, Git, authenticated, current_auth
    from gitops_lab.errors import GitError

    repo = Git(server.root.parent)
    with authenticated(server.creds.reader):
        assert repo.run("ls-remote", server.url()).returncode == 0
        assert USERNAME_VAR not in os.environ and PASSWORD_VAR not in os.environ
    assert current_auth() is None
    with pytest.raises(GitError, match="could not read Username|Authentication failed"):
        repo.run("ls-remote", server.url())


def test_a_command_uses_the_saved_credentials_and_leaves_nothing_behind(server, tmp_path, monkeypatch):
    """`up` on kind saves the learner's credentials; each later command pushes with them, and they
    end with the command: an in-process caller (a test, a notebook) is not left authenticated."""
    from click.testing import CliRunner

    from gitops_lab.adapters.repo.git import PASSWORD_VAR, USERNAME_VAR, current_auth
    from gitops_lab.cli import main

    for var in (USERNAME_VAR, PASSWORD_VAR):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "work"
    # `--name lab` is the environment whose credentials the fixture saved
    result = CliRunner().invoke(
        main, ["--name", "lab", "repo", "init", str(work), "--remote", server.url()], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert run_git(
        "ls-remote",
        server.url(server.creds.reader.username, server.creds.reader.password),
        "refs/heads/main",
        cwd=tmp_path,
    ).stdout.strip(), "the command did not publish main"
    assert current_auth() is None
    assert USERNAME_VAR not in os.environ and PASSWORD_VAR not in os.environ


def test_the_server_stops_on_sigterm_as_pid_1(tmp_path):
    # In its pod the server is PID 1, for which SIGTERM has no default action: without its own
    # handler the kubelet would wait out the grace period (30 s) on every restart and delete.
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root to run the server as PID 1 of a new PID namespace")
    users = tmp_path / "users"
    users.write_text("")
    env = dict(
        os.environ, GIT_ROOT=str(tmp_path / "repos"), GIT_REPOS="lab", AUTH_FILE=str(users), PORT=str(free_port())
    )
    outer = subprocess.Popen(
        ["unshare", "--pid", "--fork", sys.executable, "-u", str(SERVER_PY)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert outer.stderr is not None
        while "serving lab" not in outer.stderr.readline():  # started, as PID 1
            assert outer.poll() is None
        children = Path(f"/proc/{outer.pid}/task/{outer.pid}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGTERM)
        assert outer.wait(timeout=10) == 0
        assert "stopping on signal 15" in outer.stderr.read()
    finally:
        outer.kill()
        outer.wait()


def test_up_seeds_the_platform_repository_beside_the_lab_on_the_in_cluster_server(state, tmp_path):
    """The server `up` runs holds ml-platform-pipelines too; the writer publishes it with v1.0.0, the engines' reader
    clones it."""
    from gitops_lab.adapters.gitserver.incluster import InClusterGitServer
    from gitops_lab.adapters.repo.git import authenticated
    from gitops_lab.adapters.repo.platform import seed_platform

    gitserver = InClusterGitServer("lab")
    [deployment] = [o for o in gitserver.manifests() if o["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GIT_REPOS"] == "lab,ml-platform-pipelines"
    repository = gitserver.repository()
    assert repository.platform_url == "http://localhost:8180/ml-platform-pipelines.git"

    creds = load_or_create_credentials("lab")
    users = tmp_path / "users"
    users.write_text(auth_file(creds))
    running = RunningServer(tmp_path / "repos", users, free_port(), repos=env["GIT_REPOS"])
    running.start()
    try:
        url = f"http://127.0.0.1:{running.port}/ml-platform-pipelines.git"
        with authenticated(creds.writer):
            assert seed_platform(url) == "seeded"
            assert seed_platform(url) == "reused"
        reader = (
            f"http://{creds.reader.username}:{creds.reader.password}@127.0.0.1:{running.port}/ml-platform-pipelines.git"
        )
        tags = run_git("ls-remote", "--tags", reader).stdout
        assert "refs/tags/v1.0.0" in tags
    finally:
        running.stop()

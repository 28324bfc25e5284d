"""The cluster unreachable: an API server that refuses connections, and one that
accepts them and never answers (a real socket on loopback). Every command that
talks to the cluster ends by its --timeout with one line naming the cluster's
URL and `gitops-lab up`; a promote or rollback whose push went through says the
commit is published and how to wait for it."""

from __future__ import annotations

import json
import socket

import pytest
from helpers.paths import TESTDATA
from helpers.faults import SilentServer
from helpers.gitutil import git

from gitops_lab.state import state_root

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
"""


@pytest.fixture(params=["refused", "silent"])
def dead_cluster(request, lab, tmp_path):
    """(working copy, remote, API URL): `up`'s state names an engine and a kubeconfig whose server is dead."""
    wc, remote = lab
    silent = None
    if request.param == "silent":
        silent = SilentServer()
        port = silent.port
    else:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now: connections are refused
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=port), encoding="utf-8")
    path = state_root() / "gitops-lab" / "state.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    state.update(engine="flux", engine_install="external", provider="existing", kubeconfig=str(kubeconfig))
    path.write_text(json.dumps(state), encoding="utf-8")
    yield wc, remote, f"https://127.0.0.1:{port}"
    if silent:
        silent.close()


def _one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [["status"], ["sync"], ["verify", "--env", "dev"], ["release"]],
    ids=["status", "sync", "verify", "release"],
)
def test_a_dead_api_server_is_one_line_naming_it_within_the_timeout(dead_cluster, cli, args):
    wc, remote, url = dead_cluster
    head = git(remote, "rev-parse", "main")
    result = cli(*args, "--timeout", "4")
    assert result.exit_code == 1, result.output
    line = _one_error_line(result)
    assert f"cannot reach the cluster at {url}" in line and "is it running? `gitops-lab up`" in line
    assert git(remote, "rev-parse", "main") == head  # nothing published on the way


@pytest.mark.parametrize(
    "setup,args,env",
    [
        ([], ["promote", "--to", "staging"], "staging"),
        (["promote", "--to", "staging", "--no-wait"], ["rollback", "--env", "staging"], "staging"),
    ],
    ids=["promote", "rollback"],
)
def test_a_change_pushed_while_the_api_server_is_dead_says_it_is_published_and_how_to_wait(
    dead_cluster, cli, setup, args, env
):
    wc, remote, url = dead_cluster
    if setup:
        assert cli(*setup).exit_code == 0
    result = cli(*args, "--timeout", "4")
    assert result.exit_code == 1, result.output
    line = _one_error_line(result)
    commit = git(remote, "rev-parse", "main")
    assert commit == git(wc, "rev-parse", "HEAD")
    assert f"{commit[:7]} is published on the remote" in line
    assert f"cannot reach the cluster at {url}" in line and f"`gitops-lab sync --env {env}`" in line


# -- one deadline per command: the lab commands ---------------------------------------------
@pytest.fixture
def silent_remote_lab(lab, cli, monkeypatch):
    """The test labs started in a working copy whose remote then stops answering."""

    monkeypatch.setenv("GITOPS_LAB_LABS_DIR", str(TESTDATA / "labs"))
    wc, remote = lab
    assert cli("lab", "start", "good").exit_code == 0
    server = SilentServer()
    git(wc, "remote", "set-url", "origin", server.url)
    yield wc
    server.close()


@pytest.mark.parametrize(
    "args", [["start", "good"], ["check"], ["solve"], ["reset"]], ids=["start", "check", "solve", "reset"]
)
def test_a_lab_command_against_a_silent_remote_ends_by_its_one_deadline_and_names_it(silent_remote_lab, cli, args):
    result = cli("lab", *args, "--timeout", "3")
    assert result.exit_code == 3, result.output
    line = _one_error_line(result)
    assert "within the command's 3s deadline" in line, line


# -- one deadline per command: the class commands -------------------------------------------
@pytest.mark.parametrize("command", ["create", "delete"])
def test_a_class_command_against_a_silent_api_server_ends_by_its_timeout_and_names_it(cli, tmp_path, command):
    """`class create` and `class delete` run under --timeout as the command's deadline: the API server that
    never answers costs what is left of it, and the line says whose deadline ended the wait."""
    from gitops_lab.classroom.record import ClassRecord, GitServerRecord, class_dir

    server = SilentServer()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=server.port), encoding="utf-8")
    git_options = ["--git-root", str(tmp_path), "--git-base-url", "http://127.0.0.1:9"]
    if command == "delete":
        git_server = GitServerRecord("folder", str(tmp_path), "http://127.0.0.1:9")
        ClassRecord("gitops-lab", "flux", str(kubeconfig), None, git_server, ["cs-ana", "cs-ben"]).save()
        args = ["class", "delete"]
    else:
        args = ["class", "create", "--count", "2", "--engine", "flux", *git_options, "--kubeconfig", str(kubeconfig)]
    try:
        result = cli(*args, "--timeout", "3")
    finally:
        server.close()
    assert result.exit_code == 1, result.output
    line = _one_error_line(result)
    assert f"cannot reach the cluster at https://127.0.0.1:{server.port}" in line, line
    assert "within the command's 3s deadline" in line, line
    if command == "delete":
        assert (class_dir("gitops-lab") / "class.json").is_file()  # nothing of the class is gone

"""The error contract and the small promises of issue 10: bare groups print
their help, help examples match the README, `doctor` does not mark kind ready
when it cannot be downloaded, Git-only advice names options that exist, and
the README documents every exit code the CLI uses."""

from __future__ import annotations

import os
import re
import socket
import sys

import pytest
from helpers.paths import REPO
from helpers.faults import SilentServer, run_cli

from gitops_lab.workflows.preflight import check_kind, kind_download_problem

README = REPO / "README.md"


@pytest.mark.parametrize("group", [[], ["lab"], ["gate"], ["repo"], ["images"]])
def test_a_bare_group_prints_its_help(cli, group):
    result = cli(*group)
    assert result.exit_code == 0
    first = result.stdout.splitlines()[0]
    assert first.startswith("Usage: ") and first.endswith(" ".join([*group, "[OPTIONS] COMMAND [ARGS]..."]))
    assert "error" not in result.stderr and "Commands:" in result.stdout


def test_help_examples_use_the_git_servers_port_and_repo_has_examples(cli):
    top = cli("--help").stdout
    assert "localhost:8180/lab.git" in top and ":8080" not in top
    repo = cli("repo", "--help").stdout
    assert "Examples:" in repo and "git init --bare" in repo
    assert ":8080" not in cli("repo", "init", "--help").stdout


def test_git_only_status_and_sync_advice_names_no_option_they_lack(lab, cli):
    for args in (["status"], ["sync"]):
        result = cli(*args)
        assert result.exit_code != 0
        [line] = result.stderr.strip().splitlines()
        assert "gitops-lab up" in line
        assert "pass --no-wait" not in line


def test_untracked_files_alone_are_not_told_to_plain_git_stash(lab, cli):
    wc, _remote = lab
    (wc / "scratch.txt").write_text("notes\n")
    [line] = cli("promote", "--to", "staging").stderr.strip().splitlines()
    assert "scratch.txt" in line and "git stash --include-untracked" in line


# -- doctor and kind downloads -----------------------------------------------------------
def test_kind_that_cannot_be_downloaded_blocks_with_the_fix():
    check = check_kind(None, False, "v0.30.0", lambda: "cannot reach https://kind.sigs.k8s.io/dl/…")
    assert not check.ok and check.blocks
    assert "`up` cannot download v0.30.0" in check.detail and "install kind v0.30.0 on PATH" in check.fix
    assert check_kind("kind v0.30.0 go1.24.6 linux/amd64", False, "v0.30.0", lambda: "unused").ok
    assert check_kind(None, True, "v0.30.0", lambda: "unused").ok


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_download_probe_reports_a_refused_and_a_silent_network(monkeypatch):
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")
    refused = kind_download_problem("v0.30.0")
    assert refused and refused.startswith("cannot reach https://kind.sigs.k8s.io/dl/v0.30.0/")
    silent = SilentServer()
    try:
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{silent.port}")
        assert "cannot reach" in (kind_download_problem("v0.30.0") or "")  # ends: bounded by its timeout
    finally:
        silent.close()


def test_doctor_without_kind_and_without_network_does_not_mark_kind_ready(tmp_path):
    env = {
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        "GITOPS_LAB_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin",
        "https_proxy": f"http://127.0.0.1:{_closed_port()}",
    }
    done = run_cli(["doctor"], tmp_path / "state", extra_env=env)
    [kind] = [line for line in done.stdout.splitlines() if re.match(r"^\S kind ", line)]
    assert kind.startswith("✗ kind") and "cannot download" in kind
    assert done.returncode == 1


# -- the README's error contract -----------------------------------------------------------
def test_the_readme_documents_every_exit_code_and_the_tour_creates_its_remote():
    text = README.read_text(encoding="utf-8")
    contract = text[text.index("## Errors and exit codes") :]
    contract = contract[: contract.index("\n## ", 3)]
    for code in ("`0`", "`1`", "`2`", "`3`", "`4`", "`130`", "`143`"):
        assert code in contract, code
    tour = text[text.index("## A tour") :]
    assert tour.index("git init --bare") < tour.index("gitops-lab repo init")


# -- signals outside a Git write -----------------------------------------------------------
def test_ctrl_c_while_the_command_is_still_loading_is_one_line_and_130(tmp_path):
    shim = tmp_path / "shim" / "click"
    shim.mkdir(parents=True)
    # Stands for the user pressing Ctrl-C while Python imports the CLI.
    (shim / "__init__.py").write_text("raise KeyboardInterrupt\n")
    done = run_cli(["status"], tmp_path / "state", extra_env={"PYTHONPATH": str(shim.parent)})
    assert done.returncode == 130
    assert done.stderr.strip().splitlines() == [
        "error: interrupted by SIGINT (Ctrl-C) while starting; nothing was changed"
    ]


@pytest.mark.parametrize("sig_name,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_while_git_waits_on_a_silent_remote_is_one_line_and_the_right_code(lab, tmp_path, sig_name, code):
    import signal
    import time

    from helpers.faults import ENDS_WITHIN, cli_process
    from helpers.gitutil import git

    from gitops_lab.state import state_root

    wc, _remote = lab
    silent = SilentServer()
    try:
        git(wc, "remote", "set-url", "origin", silent.url)
        head = git(wc, "rev-parse", "HEAD")
        proc = cli_process(["promote", "--to", "staging", "--timeout", "120"], state_root())
        limit = time.monotonic() + ENDS_WITHIN
        while not silent.accepted:  # git is connected and waiting for an answer
            assert time.monotonic() < limit and proc.poll() is None
            time.sleep(0.05)
        os.killpg(proc.pid, getattr(signal, sig_name))
        _out, err = proc.communicate(timeout=ENDS_WITHIN)
    finally:
        silent.close()
    assert proc.returncode == code
    assert err.strip().splitlines() == [
        f"error: interrupted by {sig_name}{' (Ctrl-C)' if code == 130 else ''}; re-run the same command to finish"
    ]
    assert git(wc, "rev-parse", "HEAD") == head and git(wc, "status", "--porcelain") == ""

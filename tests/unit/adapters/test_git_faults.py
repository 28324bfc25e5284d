"""Fault injection for every Git write: publish, or put the working copy back.

Each test asserts four things: nothing is lost (the change is on the remote, or
on the backup ref the message names); the remote and the local copy agree;
running the same command again finishes the job; the command ends (well
within a generous bound). Faults: a refusing pre-receive hook, SIGINT and
SIGTERM at three points of each write (after the local commit, while the
remote's pre-receive runs, after the remote took the push), a remote that
accepts connections and never answers, and races between two working copies.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from helpers.paths import TESTDATA
from helpers.faults import (
    SilentServer,
    backup_in,
    cli_process,
    finish,
    race_once_before_push,
    no_lock_files,
    refusing_hook,
    run_cli,
    signal_when,
    snapshot,
    stalling_hook,
)
from helpers.gitutil import git, last_trailers, remote_version
from helpers.renderer import needs_kustomize

from gitops_lab.adapters.repo import RepoLayout
from gitops_lab.state import state_root

HOOK_WORDS = "policy: changes to this repository need ticket LAB-42"

# (id, setup commands, the write, subject of its commit, its re-run outcome when already published)
WRITERS = {
    "promote": ([], ["promote", "--from", "dev", "--to", "staging"], "Promote v2 to staging"),
    "rollback": ([["promote", "--to", "staging"]], ["rollback", "--env", "staging"], "Roll back staging to v1"),
    "rollback-to": (
        [["promote", "--to", "staging"]],
        ["rollback", "--env", "staging", "--to", "v1"],
        "Roll back staging to v1",
    ),
    "approve": ([], ["approve", "--env", "prod", "--version", "v2", "--by", "alice"], "Approve v2 for prod"),
}
# Re-running these after they were published is a no-op that exits 0 (plain `rollback` would find nothing left).
IDEMPOTENT = ["promote", "rollback-to", "approve"]


def _setup(cli, writer: str) -> list[str]:
    setup, args, _subject = WRITERS[writer]
    for step in setup:
        assert cli(*step).exit_code == 0
    return args


def _last_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), stderr
    assert "Traceback" not in stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, stderr
    return lines[-1]


# -- a hook that refuses ----------------------------------------------------------------------
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_refused_push_shows_the_hook_puts_the_copy_back_and_the_rerun_publishes(lab, cli, writer):
    wc, remote = lab
    args = _setup(cli, writer)
    subject = WRITERS[writer][2]
    before = snapshot(wc, remote)
    hook = refusing_hook(remote, HOOK_WORDS)

    refused = cli(*args)
    assert refused.exit_code == 1
    line = _last_error_line(refused.stderr)
    assert HOOK_WORDS in line and "pre-receive hook declined" in line
    assert "Done" not in line
    # Nothing lost: the commit is on the backup ref the message names.
    assert git(wc, "log", "-1", "--format=%s", backup_in(line)) == subject
    # The local copy and the remote agree, as they were.
    assert snapshot(wc, remote) == before
    # Nothing unpublished is reported as done.
    assert subject not in cli("history", "--env", "prod" if writer == "approve" else "staging").stdout

    hook.unlink()
    again = cli(*args)
    assert again.exit_code == 0, again.output
    assert git(remote, "log", "-1", "--format=%s", "main") == subject
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


def test_a_refused_push_during_lab_start_actions_and_reset_is_undone_and_rerun(tmp_path, monkeypatch):

    from click.testing import CliRunner

    from gitops_lab.cli import main

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GITOPS_LAB_LABS_DIR", str(TESTDATA / "labs"))
    monkeypatch.delenv("GITOPS_LAB_REPO", raising=False)
    remote, wc = tmp_path / "remote.git", tmp_path / "wc"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    assert cli("repo", "init", str(wc), "--remote", str(remote)).exit_code == 0
    hook = refusing_hook(remote, HOOK_WORDS)
    refused_start = cli("lab", "start", "good")
    assert refused_start.exit_code == 1
    assert HOOK_WORDS in _last_error_line(refused_start.stderr)
    assert git(wc, "tag", "--list", "gitops-lab/lab/good/start") == ""  # not kept as if it were recorded
    hook.unlink()
    assert cli("lab", "start", "good").exit_code == 0
    assert git(remote, "rev-parse", "gitops-lab/lab/good/start^{commit}") == git(remote, "rev-parse", "main")
    before = snapshot(wc, remote)
    hook = refusing_hook(remote, HOOK_WORDS)
    solve = cli("lab", "solve")
    assert solve.exit_code == 1
    line = _last_error_line(solve.stderr)
    assert HOOK_WORDS in line
    assert git(wc, "log", "-1", "--format=%s", backup_in(line)) == "Scale dev to 2 replicas"
    assert snapshot(wc, remote) == before

    reset = cli("lab", "reset", "good")
    assert reset.exit_code == 1
    assert HOOK_WORDS in _last_error_line(reset.stderr)
    assert snapshot(wc, remote) == before

    hook.unlink()
    assert cli("lab", "solve").exit_code == 0
    assert "replicas: 2" in git(remote, "show", "main:overlays/dev/kustomization.yaml").replace(
        "count: 2", "replicas: 2"
    )
    assert cli("lab", "reset", "good").exit_code == 0
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
    assert git(remote, "log", "-1", "--format=%s", "main") == "Reset lab good to its start point"


# -- SIGINT and SIGTERM at three points of each write ------------------------------------------------
POINTS = {
    # where the write stalls, and whether the remote has the commit when the signal arrives
    "after-local-commit": ("post-commit", False),
    "during-remote-pre-receive": ("pre-receive", False),
    "after-remote-took-it": ("post-receive", True),
}
SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}
# The other ways a session ends: the terminal closing or an ssh drop (SIGHUP), Ctrl-\\ (SIGQUIT).
ENDINGS = {"SIGHUP": (signal.SIGHUP, 129), "SIGQUIT": (signal.SIGQUIT, 131)}


def _interrupt_case(lab, cli, tmp_path, writer: str, point: str, sig_name: str):
    wc, remote = lab
    args = _setup(cli, writer)
    subject = WRITERS[writer][2]
    hook_name, reached_remote = POINTS[point]
    marker = tmp_path / "hook-started"
    hook = stalling_hook(wc if hook_name == "post-commit" else remote, hook_name, marker)
    before = snapshot(wc, remote)
    sig, code = {**SIGNALS, **ENDINGS}[sig_name]

    stopped = signal_when(cli_process(args, state_root()), marker, sig)
    assert stopped.returncode == code, stopped.stderr
    line = _last_error_line(stopped.stderr)
    assert f"interrupted by {sig_name}" in line
    assert no_lock_files(remote) and no_lock_files(wc / ".git")
    if reached_remote:
        # The remote has it, so nothing was undone, and the local copy agrees with the remote.
        assert git(remote, "log", "-1", "--format=%s", "main") == subject
        assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
        assert "backup" not in line
    else:
        assert git(wc, "log", "-1", "--format=%s", backup_in(line)) == subject
        if hook_name == "post-commit":  # no push had started: known not to be on the remote
            assert "was not published" in line and "re-run the same command" in line
        else:  # the push was cut off: the remote may still finish it, so never "not published"
            assert "may or may not have reached the remote" in line and "not published" not in line
            assert "re-run the same command to check" in line
        assert snapshot(wc, remote) == before
    assert git(wc, "status", "--porcelain") == ""
    assert git(wc, "rev-parse", "--abbrev-ref", "HEAD") == "main"

    hook.unlink()
    again = run_cli(args, state_root())
    assert again.returncode == 0, again.stderr
    assert git(remote, "log", "-1", "--format=%s", "main") == subject
    assert git(remote, "log", "--format=%s", "main").splitlines().count(subject) == 1
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
    return again


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("writer", IDEMPOTENT)
def test_ctrl_c_at_each_point_of_each_write_leaves_it_consistent_and_the_rerun_finishes(
    lab, cli, tmp_path, writer, point
):
    again = _interrupt_case(lab, cli, tmp_path, writer, point, "SIGINT")
    if POINTS[point][1]:
        assert "nothing to do" in again.stdout


@pytest.mark.parametrize("writer", IDEMPOTENT)
def test_sigterm_during_the_push_is_one_line_exit_143_and_undone(lab, cli, tmp_path, writer):
    _interrupt_case(lab, cli, tmp_path, writer, "during-remote-pre-receive", "SIGTERM")


@pytest.mark.parametrize("sig_name", list(ENDINGS))
@pytest.mark.parametrize("point", ["after-local-commit", "during-remote-pre-receive"])
def test_sighup_and_sigquit_end_a_write_like_ctrl_c(lab, cli, tmp_path, point, sig_name):
    """Closing the terminal mid-promote: one line, the copy put back, the commit on a backup ref, re-run finishes."""
    _interrupt_case(lab, cli, tmp_path, "promote", point, sig_name)


@pytest.mark.parametrize("sig_name", list(SIGNALS))
def test_an_interrupted_repo_init_push_is_published_by_the_rerun(cli, tmp_path, sig_name):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    marker = tmp_path / "hook-started"
    hook = stalling_hook(remote, "pre-receive", marker)
    args = ["repo", "init", str(tmp_path / "wc"), "--remote", str(remote)]
    sig, code = SIGNALS[sig_name]
    stopped = signal_when(cli_process(args, state_root()), marker, sig)
    assert stopped.returncode == code
    assert f"interrupted by {sig_name}" in _last_error_line(stopped.stderr)
    assert git(remote, "for-each-ref") == ""  # the remote got nothing
    hook.unlink()
    again = run_cli([*args, "--output", "json"], state_root())
    assert again.returncode == 0, again.stderr
    assert '"action": "seeded"' in again.stdout and '"changed": true' in again.stdout
    assert git(remote, "rev-parse", "main") == git(tmp_path / "wc", "rev-parse", "HEAD")
    assert git(remote, "rev-parse", "gitops-lab/seed^{commit}") == git(remote, "rev-parse", "main")
    third = run_cli([*args, "--output", "json"], state_root())
    assert '"action": "reused"' in third.stdout


def _stall_in_every_repository(tmp_path, hook_name: str) -> tuple[dict[str, str], object]:
    """Git's own seam: `core.hooksPath` through the environment, so the hook runs in the copy being made."""
    marker = tmp_path / "hook-started"
    (tmp_path / "global" / "hooks").mkdir(parents=True)
    hook = stalling_hook(tmp_path / "global", hook_name, marker)
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": str(hook.parent),
    }, marker


@pytest.mark.parametrize(
    ("how", "hook_name"),
    [("seed", "pre-commit"), ("seed-into-empty-folder", "post-commit"), ("clone", "post-checkout")],
)
def test_a_repo_init_killed_before_its_copy_is_complete_leaves_nothing_and_the_rerun_finishes(
    cli, tmp_path, how, hook_name
):
    """kill -9 while the seed is committed (or the clone checked out): PATH is untouched, the re-run does it all."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    if how == "clone":
        assert cli("repo", "init", str(tmp_path / "first"), "--remote", str(remote)).exit_code == 0
    wc = tmp_path / "wc"
    if how == "seed-into-empty-folder":
        wc.mkdir()
    env, marker = _stall_in_every_repository(tmp_path, hook_name)
    args = ["repo", "init", str(wc), "--remote", str(remote)]
    killed = signal_when(cli_process(args, state_root(), extra_env=env), marker, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not wc.exists() or list(wc.iterdir()) == []  # nothing half-made at PATH
    leftover = tmp_path / ".wc.gitops-lab-seeding"
    assert leftover.is_dir()  # the stopped run's own folder, beside PATH

    again = run_cli([*args, "--output", "json"], state_root())
    assert again.returncode == 0, again.stderr
    assert f"removed {leftover}" in again.stdout + again.stderr
    assert ('"action": "cloned"' if how == "clone" else '"action": "seeded"') in again.stdout
    assert not leftover.exists()
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
    assert git(wc, "status", "--porcelain") == ""
    assert git(wc, "rev-parse", "gitops-lab/seed^{commit}") == git(wc, "rev-list", "--max-parents=0", "HEAD")
    third = run_cli([*args, "--output", "json"], state_root())
    assert '"action": "reused"' in third.stdout and "gitops-lab-seeding" not in third.stdout + third.stderr


def test_a_refused_repo_init_push_shows_the_hook_and_the_rerun_publishes(cli, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    hook = refusing_hook(remote, HOOK_WORDS)
    wc = tmp_path / "wc"
    refused = cli("repo", "init", str(wc), "--remote", str(remote))
    assert refused.exit_code == 1
    line = _last_error_line(refused.stderr)
    assert HOOK_WORDS in line and "Done" not in line and f"gitops-lab repo init {wc} --remote {remote}" in line
    hook.unlink()
    again = cli("repo", "init", str(wc), "--remote", str(remote))
    assert again.exit_code == 0 and "Seeded" in again.stdout and "nothing changed" not in again.stdout
    assert git(remote, "rev-parse", "main") == git(wc, "rev-parse", "HEAD")


# -- a remote that accepts and never answers ------------------------------------------------------
@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def test_a_closed_silent_server_leaves_no_thread_behind_to_take_the_next_servers_connections():
    """A thread left in accept() on the closed socket was restarted by a child's SIGCHLD on the same descriptor
    number, by then the next test's HTTP server: it took that server's connection, then dropped it (a reset)."""
    import socket
    import threading
    import time

    from helpers.faults import ENDS_WITHIN

    before = set(threading.enumerate())
    silent = SilentServer()
    with socket.create_connection(("127.0.0.1", silent.port), timeout=ENDS_WITHIN):
        while not silent.accepted:  # its thread is back in accept()
            time.sleep(0.01)
    silent.close()
    assert set(threading.enumerate()) <= before


def test_a_remote_that_never_answers_is_bounded_by_timeout_when_fetching(lab, cli, silent_server):
    wc, remote = lab
    git(wc, "remote", "set-url", "origin", silent_server.url)
    before = git(wc, "rev-parse", "HEAD")
    result = run_cli(["promote", "--to", "staging", "--timeout", "5"], state_root())
    assert result.returncode == 3, result.stderr
    line = _last_error_line(result.stderr)
    assert "git fetch" in line and "5s deadline" in line
    assert silent_server.accepted  # it really connected, and got no answer
    assert git(wc, "rev-parse", "HEAD") == before and git(wc, "status", "--porcelain") == ""


def test_a_push_that_never_gets_an_answer_is_undone_at_the_deadline_and_the_rerun_publishes(lab, cli, silent_server):
    wc, remote = lab
    git(wc, "config", "remote.origin.pushurl", silent_server.url)
    before = snapshot(wc, remote)
    result = run_cli(["promote", "--to", "staging", "--timeout", "5"], state_root())
    assert result.returncode == 3, result.stderr
    line = _last_error_line(result.stderr)
    assert "git push" in line and "deadline" in line
    assert git(wc, "log", "-1", "--format=%s", backup_in(line)) == "Promote v2 to staging"
    assert snapshot(wc, remote) == before
    git(wc, "config", "--unset", "remote.origin.pushurl")
    again = run_cli(["promote", "--to", "staging", "--timeout", "60"], state_root())
    assert again.returncode == 0, again.stderr
    assert remote_version(remote, "staging") == "v2"


# -- races between two working copies -------------------------------------------------------------
def test_a_conflicting_change_is_undone_and_the_rerun_publishes_fresh_trailers(lab, cli, tmp_path):
    wc, remote = lab
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(other)], check=True)
    # Between our fetch and our push, another copy moves staging to v3.
    race_once_before_push(
        wc,
        f"cd '{other}' && sed -i 's/model-version: .*/model-version: v3/' overlays/staging/kustomization.yaml"
        " && git commit --quiet -am 'Concurrent: staging to v3' && git push --quiet origin main",
    )
    first = cli("promote", "--from", "dev", "--to", "staging")
    assert first.exit_code == 1
    line = _last_error_line(first.stderr)
    assert "changed the same lines concurrently" in line and "git pull --rebase" not in line
    stale = backup_in(line)
    assert "Previous-Version: v1" in git(wc, "log", "-1", "--format=%B", stale)
    assert remote_version(remote, "staging") == "v3"
    assert git(wc, "status", "--porcelain") == ""

    again = cli("promote", "--from", "dev", "--to", "staging")
    assert again.exit_code == 0, again.output
    assert "(was v3)" in again.stdout
    trailers = last_trailers(remote)
    assert "Previous-Version: v3" in trailers and "Previous-Version: v1" not in trailers
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


def test_two_copies_writing_at_once_both_land_once_and_agree_with_the_remote(lab, cli, tmp_path):
    wc, remote = lab
    other = tmp_path / "other"
    state_b = tmp_path / "state-b"
    first = run_cli(["repo", "init", str(other), "--remote", str(remote)], state_b)
    assert first.returncode == 0, first.stderr
    a = cli_process(["approve", "--env", "prod", "--version", "v2", "--by", "alice"], state_root())
    b = cli_process(["promote", "--to", "staging"], state_b)
    results = [p.communicate(timeout=90) + (p.returncode,) for p in (a, b)]
    assert [r[2] for r in results] == [0, 0], results
    subjects = git(remote, "log", "--format=%s", "main").splitlines()
    assert subjects.count("Approve v2 for prod") == 1 and subjects.count("Promote v2 to staging") == 1
    assert git(remote, "rev-list", "--merges", "main") == ""
    for copy in (wc, other):
        git(copy, "fetch", "--quiet")
        assert git(copy, "status", "--porcelain") == ""
        assert git(copy, "rev-list", "--count", "origin/main..HEAD") == "0"  # nothing left unpublished


# -- unpublished commits: the user's are refused, the tool's own are recognised --------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["promote", "--to", "staging"],
        ["rollback", "--env", "staging", "--to", "v1"],
        ["approve", "--env", "prod", "--version", "v2", "--by", "alice"],
    ],
)
def test_a_learners_unpushed_commits_are_never_published_by_a_write(lab, cli, args):
    wc, remote = lab
    assert cli("promote", "--to", "staging").exit_code == 0
    RepoLayout(wc).set_model_version("prod", "v3")
    git(wc, "commit", "--quiet", "-am", "WIP: try v3 in prod")
    git(wc, "commit", "--quiet", "--allow-empty", "-m", "notes")
    local, on_remote = git(wc, "rev-parse", "HEAD"), git(remote, "rev-parse", "main")
    result = cli(*args)
    assert result.exit_code == 1
    line = _last_error_line(result.stderr)
    wip, notes = (git(wc, "log", "-1", "--format=%h", rev) for rev in ("HEAD~1", "HEAD"))
    assert f"2 commits ({notes} notes, {wip} WIP: try v3 in prod)" in line
    assert "git push origin main" in line and "git reset --hard origin/main" in line
    assert git(remote, "rev-parse", "main") == on_remote  # nothing published
    assert remote_version(remote, "prod") == "v1"
    assert git(wc, "rev-parse", "HEAD") == local and git(wc, "status", "--porcelain") == ""


def test_nothing_to_do_is_never_decided_from_an_unpublished_commit(lab, cli):
    wc, remote = lab
    RepoLayout(wc).set_model_version("staging", "v2")
    git(wc, "commit", "--quiet", "-am", "Promote v2 to staging")
    for args in (["promote", "--to", "staging"], ["approve", "--env", "prod", "--version", "v2"]):
        result = cli(*args)
        assert result.exit_code == 1
        line = _last_error_line(result.stderr)
        assert "nothing to do" not in result.output
        assert "1 commit (" in line and "git reset --hard origin/main" in line
    assert remote_version(remote, "staging") == "v1"


@pytest.mark.parametrize("point", ["post-commit", "pre-receive"])
def test_a_write_killed_with_sigkill_is_recognised_set_aside_and_redone_once(lab, cli, tmp_path, point):
    """kill -9 leaves the tool's commit on local main, unpublished: the re-run says so, sets it aside, redoes it."""
    wc, remote = lab
    marker = tmp_path / "hook-started"
    hook = stalling_hook(wc if point == "post-commit" else remote, point, marker)
    killed = signal_when(cli_process(["promote", "--to", "staging"], state_root()), marker, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert git(wc, "log", "-1", "--format=%s") == "Promote v2 to staging"  # what kill -9 leaves
    left = git(wc, "rev-parse", "HEAD")
    hook.unlink()
    again = run_cli(["promote", "--to", "staging"], state_root())
    assert again.returncode == 0, again.stderr
    assert "left unpublished is set aside on refs/gitops-lab/backup/" in again.stdout
    assert git(wc, "rev-parse", backup_in(again.stdout)) == left
    assert git(remote, "log", "--format=%s", "main").splitlines().count("Promote v2 to staging") == 1
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
    assert git(wc, "for-each-ref", "refs/gitops-lab/write") == ""


def test_diverged_history_is_refused_with_how_to_settle_it(lab, cli, tmp_path):
    wc, remote = lab
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(other)], check=True)
    git(other, "commit", "--quiet", "--allow-empty", "-m", "Someone else's change")
    git(other, "push", "--quiet", "origin", "main")
    git(wc, "commit", "--quiet", "--allow-empty", "-m", "My local change")
    head = git(wc, "rev-parse", "HEAD")
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 1
    line = _last_error_line(result.stderr)
    assert "diverged" in line and "My local change" in line and "git pull --rebase && git push" in line
    assert git(wc, "rev-parse", "HEAD") == head


# -- repo init against remotes as people make them ----------------------------------------------------
def test_repo_init_against_a_bare_remote_whose_head_names_another_branch(cli, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    git(remote, "symbolic-ref", "HEAD", "refs/heads/master")  # what `git init --bare` does by default
    assert cli("repo", "init", str(tmp_path / "first"), "--remote", str(remote)).exit_code == 0
    second = cli("--name", "second", "repo", "init", str(tmp_path / "second"), "--remote", str(remote))
    assert second.exit_code == 0, second.output
    assert "Cloned" in second.stdout
    assert git(tmp_path / "second", "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(tmp_path / "second", "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


def test_a_relative_remote_is_stored_absolute_and_later_commands_work_from_anywhere(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", "tour/lab.git"], check=True)
    result = cli("repo", "init", "tour/lab-repo", "--remote", "tour/lab.git")
    assert result.exit_code == 0, result.output
    absolute = str(tmp_path / "tour" / "lab.git")
    assert git(tmp_path / "tour" / "lab-repo", "remote", "get-url", "origin") == absolute
    assert f'"remote_url": "{absolute}"' in (state_root() / "gitops-lab" / "state.json").read_text()
    monkeypatch.chdir(tmp_path / "tour" / "lab-repo" / "overlays")
    assert cli("promote", "--to", "staging").exit_code == 0
    assert remote_version(tmp_path / "tour" / "lab.git", "staging") == "v2"


@pytest.mark.parametrize("remote", ["missing.git", "empty-dir"])
def test_a_remote_that_is_not_a_repository_says_to_create_it_with_git_init_bare(cli, tmp_path, monkeypatch, remote):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty-dir").mkdir()
    result = cli("repo", "init", "wc", "--remote", remote)
    assert result.exit_code == 2
    line = _last_error_line(result.stderr)
    assert f"git init --bare {tmp_path / remote}" in line
    assert not (tmp_path / "wc").exists()


@pytest.mark.parametrize("sig_name", list(SIGNALS))
@pytest.mark.parametrize(
    "command, subject",
    [(["lab", "solve"], "Scale dev to 2 replicas"), (["lab", "reset", "good"], "Reset lab good to its start point")],
)
def test_a_lab_write_interrupted_during_its_push_is_undone_and_the_rerun_finishes(
    tmp_path, monkeypatch, command, subject, sig_name
):
    """A lab's own Git writes (a step's solution, a reset) follow the one rule under SIGINT and SIGTERM."""

    from click.testing import CliRunner

    from gitops_lab.cli import main

    labs = str(TESTDATA / "labs")
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GITOPS_LAB_LABS_DIR", labs)
    monkeypatch.delenv("GITOPS_LAB_REPO", raising=False)
    remote, wc = tmp_path / "remote.git", tmp_path / "wc"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    runner = CliRunner()
    assert runner.invoke(main, ["repo", "init", str(wc), "--remote", str(remote)]).exit_code == 0
    assert runner.invoke(main, ["lab", "start", "good"]).exit_code == 0
    if command[1] == "reset":  # something to reset: the learner's step done
        assert runner.invoke(main, ["lab", "solve"]).exit_code == 0
    marker = tmp_path / "hook-started"
    hook = stalling_hook(remote, "pre-receive", marker)
    before = snapshot(wc, remote)
    sig, code = SIGNALS[sig_name]

    stopped = signal_when(cli_process(command, state_root(), extra_env={"GITOPS_LAB_LABS_DIR": labs}), marker, sig)
    assert stopped.returncode == code, stopped.stderr
    line = _last_error_line(stopped.stderr)
    assert f"interrupted by {sig_name}" in line
    assert git(wc, "log", "-1", "--format=%s", backup_in(line)) == subject  # nothing lost
    assert snapshot(wc, remote) == before  # the copy is put back, the remote never got it
    assert no_lock_files(remote) and no_lock_files(wc / ".git")
    assert git(wc, "status", "--porcelain") == ""

    hook.unlink()
    again = run_cli(command, state_root(), extra_env={"GITOPS_LAB_LABS_DIR": labs})
    assert again.returncode == 0, again.stderr
    assert git(remote, "log", "-1", "--format=%s", "main") == subject
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


@pytest.mark.parametrize(
    "args, doing",
    [
        (["approve", "--env", "prod", "--version", "v2", "--by", "alice", "--timeout", "5"], "git fetch"),
        (["repo", "init", "{wc}", "--remote", "{url}", "--timeout", "5"], "git"),
    ],
)
def test_approve_and_repo_init_end_by_their_timeout_on_a_remote_that_never_answers(
    lab, cli, silent_server, tmp_path, args, doing
):
    wc, _ = lab
    git(wc, "remote", "set-url", "origin", silent_server.url)
    before = git(wc, "rev-parse", "HEAD")
    args = [a.format(wc=tmp_path / "fresh", url=silent_server.url) for a in args]
    result = run_cli(args, state_root())
    assert result.returncode == 3, result.stderr
    line = _last_error_line(result.stderr)
    assert doing in line and "5s deadline" in line
    assert silent_server.accepted
    assert git(wc, "rev-parse", "HEAD") == before and git(wc, "status", "--porcelain") == ""


# -- a push whose outcome is unknown: a real smart-HTTP remote that finishes it after the client left -------------
@pytest.fixture
def http_lab(lab, tmp_path):
    """(working copy, bare remote, server): the lab's remote served by `git http-backend` over HTTP."""
    from helpers.gitservers import git_server

    wc, remote = lab
    with git_server("http", remote.parent) as server:
        git(wc, "remote", "set-url", "origin", server.url(remote.name))
        yield wc, remote, server


def _cut_off_while_the_server_holds_the_push(server, args: list[str], sig: int) -> subprocess.CompletedProcess:
    import os

    from helpers.faults import ENDS_WITHIN, finish

    server.hold_pushes = True
    server.push_finished.clear()
    proc = cli_process(args, state_root())
    if not server.push_started.wait(ENDS_WITHIN):
        proc.kill()
        raise AssertionError(f"the push never reached the server: {proc.communicate()}")
    os.killpg(proc.pid, sig)
    ended = finish(proc, "the cut-off command")
    server.hold_pushes = False
    server.release.set()  # the server finishes the push after the client has gone
    assert server.push_finished.wait(ENDS_WITHIN)
    return ended


@pytest.mark.parametrize("sig_name", ["SIGINT", "SIGKILL"])
def test_a_rollback_the_server_finishes_after_the_client_left_is_not_rolled_back_twice(http_lab, cli, sig_name):
    wc, remote, server = http_lab
    assert cli("promote", "--to", "staging").exit_code == 0
    RepoLayout(wc).set_model_version("staging", "v3")  # a hand edit: one more change a rollback could undo
    git(wc, "commit", "--quiet", "-am", "Try v3 in staging")
    git(wc, "push", "--quiet", "origin", "main")
    sig = signal.SIGKILL if sig_name == "SIGKILL" else signal.SIGINT

    cut = _cut_off_while_the_server_holds_the_push(server, ["rollback", "--env", "staging"], sig)
    if sig_name == "SIGINT":
        assert cut.returncode == 130
        line = _last_error_line(cut.stderr)
        assert "may or may not have reached the remote" in line and "not published" not in line
    assert remote_version(remote, "staging") == "v2"  # the server finished it

    again = run_cli(["rollback", "--env", "staging"], state_root())
    assert again.returncode == 0, again.stderr
    rolled = git(remote, "log", "-1", "--format=%h", "main")
    assert "already done" in again.stdout and rolled in again.stdout and "staging v3 -> v2" in again.stdout
    assert remote_version(remote, "staging") == "v2"  # not v1: rolled back once
    assert git(remote, "log", "--format=%s", "main").splitlines().count("Roll back staging to v2") == 1
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
    assert git(wc, "status", "--porcelain") == ""


def _promoted_once_and_already_done(wc, remote) -> None:
    """The re-run of a promotion the server finished after the client left: "already done", not promoted twice."""
    assert remote_version(remote, "staging") == "v2"  # the server finished it
    again = run_cli(["promote", "--to", "staging"], state_root())
    assert again.returncode == 0, again.stderr
    promoted = git(remote, "log", "-1", "--format=%h", "main")
    author = git(remote, "log", "-1", "--format=%an", "main")
    assert f"published {promoted} (Promote v2 to staging, by {author})" in again.stdout
    assert git(remote, "log", "--format=%s", "main").splitlines().count("Promote v2 to staging") == 1
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
    assert git(wc, "status", "--porcelain") == ""


def test_a_promotion_the_server_finishes_after_a_sigterm_is_already_done_with_its_commit_and_author(http_lab, cli):
    wc, remote, server = http_lab
    cut = _cut_off_while_the_server_holds_the_push(server, ["promote", "--to", "staging"], signal.SIGTERM)
    assert cut.returncode == 143
    assert "may or may not have reached the remote" in _last_error_line(cut.stderr)
    _promoted_once_and_already_done(wc, remote)


def test_a_promotion_the_server_finishes_after_the_timeout_ran_out_is_already_done_with_its_commit_and_author(
    http_lab, cli
):
    """No signal: the command's own --timeout cuts the held push off; the server finishes it afterwards."""
    from helpers.faults import ENDS_WITHIN

    wc, remote, server = http_lab
    server.hold_pushes = True
    proc = cli_process(["promote", "--to", "staging", "--timeout", "10"], state_root())
    assert server.push_started.wait(ENDS_WITHIN), "the push never reached the server"
    cut = finish(proc, "the promotion whose push the server holds")  # ended by its deadline, nothing sent to it
    assert cut.returncode == 3, cut.stderr
    line = _last_error_line(cut.stderr)
    assert "git push" in line and "10s deadline" in line
    assert "may or may not have reached the remote" in line and "not published" not in line
    assert "re-run the same command to check" in line
    assert git(remote, "log", "-1", "--format=%s", "main") != "Promote v2 to staging"  # the server still holds it
    server.hold_pushes = False
    server.release.set()  # the server finishes the push after the client has gone
    assert server.push_finished.wait(ENDS_WITHIN)
    _promoted_once_and_already_done(wc, remote)


@pytest.mark.parametrize("where", ["fetch", "push"])
def test_a_git_protocol_remote_that_never_answers_ends_a_promotion_by_its_timeout(lab, cli, silent_server, where):
    """A `git://` remote that takes the connection and never says a word: one line by --timeout, nothing lost."""
    wc, remote = lab
    if where == "fetch":
        git(wc, "remote", "set-url", "origin", silent_server.git_url)
    else:
        git(wc, "config", "remote.origin.pushurl", silent_server.git_url)
    before = snapshot(wc, remote)
    result = run_cli(["promote", "--to", "staging", "--timeout", "5"], state_root())
    assert result.returncode == 3, result.stderr
    line = _last_error_line(result.stderr)
    assert f"git {where}" in line and "got no answer from the remote" in line and "5s deadline" in line
    assert silent_server.accepted  # git really connected over git://, and got no answer
    assert git(remote, "log", "-1", "--format=%s", "main") != "Promote v2 to staging"  # nothing published
    assert snapshot(wc, remote) == before
    if where == "push":  # the commit is kept on the backup ref the line names, and the re-run publishes it once
        assert "may or may not have reached the remote" in line
        assert git(wc, "log", "-1", "--format=%s", backup_in(line)) == "Promote v2 to staging"
        git(wc, "config", "--unset", "remote.origin.pushurl")
        again = run_cli(["promote", "--to", "staging"], state_root())
        assert again.returncode == 0, again.stderr
        assert git(remote, "log", "--format=%s", "main").splitlines().count("Promote v2 to staging") == 1


def _marked_cli(args: list[str]):
    """The CLI as a process whose every child inherits a mark in its environment: (process, mark)."""
    import uuid

    value = f"push-{uuid.uuid4().hex}"
    proc = cli_process(args, state_root(), extra_env={"GITOPS_LAB_TEST_MARK": value})
    return proc, f"GITOPS_LAB_TEST_MARK={value}"


def _git_is_pushing(mark: str) -> None:
    from helpers.faults import marked_processes

    during = marked_processes(mark)
    assert any(" push " in f" {p} " for p in during), during  # the scan sees git's push while it waits


def _no_process_of_it_left(mark: str) -> None:
    import time

    from helpers.faults import marked_processes

    # A generous bound for SIGKILLed processes to be gone, kept under git's own give-up on a slow HTTP remote
    # (the product runs it with http.lowSpeedTime=30): a git left behind would otherwise end by itself.
    limit = time.monotonic() + 10
    while (left := marked_processes(mark)) and time.monotonic() < limit:
        time.sleep(0.1)
    assert left == [], f"git processes the command started are still running: {left}"


@pytest.mark.parametrize("sig_name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_command_signalled_during_its_push_leaves_no_git_process_of_its_own_running(http_lab, monkeypatch, sig_name):
    """git runs in a session of its own, out of reach of the terminal's signals: the CLI must end it.

    Every process the CLI starts inherits a mark in its environment; a scan of /proc finds them (reparented or
    not). The signal goes to the CLI's pid alone, so only the CLI itself can end git and its helpers. The server
    holds the push until the scan is done: a git left behind would still be waiting for its answer.
    """
    import os

    from helpers import gitservers
    from helpers.faults import ENDS_WITHIN

    wc, remote, server = http_lab
    monkeypatch.setattr(gitservers, "HOLD_SECONDS", 10 * ENDS_WITHIN)
    server.hold_pushes = True
    proc, mark = _marked_cli(["promote", "--to", "staging"])
    try:
        assert server.push_started.wait(ENDS_WITHIN), "the push never reached the server"
        _git_is_pushing(mark)
        sig = getattr(signal, sig_name)
        os.kill(proc.pid, sig)
        ended = finish(proc, f"the promotion ended by {sig_name}")
        assert ended.returncode == 128 + sig, ended.stderr
        assert "may or may not have reached the remote" in _last_error_line(ended.stderr)
        _no_process_of_it_left(mark)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        server.hold_pushes = False
        server.release.set()


def test_a_command_ended_by_its_deadline_during_its_push_leaves_no_git_process_of_its_own_running(lab, silent_server):
    """A push to a silent `git://` remote (no low-speed limit of git's own there): only the CLI's deadline ends it."""
    import time

    from helpers.faults import ENDS_WITHIN

    wc, remote = lab
    git(wc, "config", "remote.origin.pushurl", silent_server.git_url)
    proc, mark = _marked_cli(["promote", "--to", "staging", "--timeout", "10"])
    try:
        limit = time.monotonic() + ENDS_WITHIN
        while not silent_server.accepted and proc.poll() is None and time.monotonic() < limit:
            time.sleep(0.05)
        assert silent_server.accepted, "the push never reached the silent remote"
        _git_is_pushing(mark)
        ended = finish(proc, "the promotion ended by its deadline")
        assert ended.returncode == 3, ended.stderr
        line = _last_error_line(ended.stderr)
        assert "git push" in line and "10s deadline" in line
        _no_process_of_it_left(mark)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@needs_kustomize
@pytest.mark.parametrize(
    "args", [["gate", "run", "--to", "staging", "--gate", "policy"], ["promote", "--to", "staging"]]
)
def test_a_render_that_fetches_from_a_silent_server_ends_by_the_commands_timeout(lab, cli, silent_server, args):
    """A kustomization with a remote resource whose server never answers: the policy gate's render takes what is
    left of --timeout, and running out is a timeout (exit 3, one line naming the overlay), not a failed gate."""
    wc, remote = lab
    kustomization = wc / "overlays" / "staging" / "kustomization.yaml"
    text = kustomization.read_text()
    assert "  - ../../base\n" in text
    kustomization.write_text(
        text.replace("  - ../../base\n", f"  - ../../base\n  - {silent_server.http_url('extra.yaml')}\n")
    )
    git(wc, "commit", "--quiet", "-am", "Staging takes one more resource from a server")
    git(wc, "push", "--quiet", "origin", "main")
    before = snapshot(wc, remote)
    result = run_cli([*args, "--timeout", "5"], state_root())
    assert result.returncode == 3, result.stdout + result.stderr
    line = _last_error_line(result.stderr)
    assert "rendering overlays/staging" in line and "did not finish within the command's 5s deadline" in line
    assert "URL under `resources:`" in line and "--timeout" in line
    assert "fix the manifest" not in line  # not a verdict on the manifests
    assert silent_server.accepted  # the renderer really asked the server
    assert snapshot(wc, remote) == before  # nothing committed, nothing published


def test_a_repo_init_stopped_while_moving_its_copy_into_place_is_finished_by_the_rerun(cli, tmp_path, monkeypatch):
    """The last steps are renames, .git last: stopped between two of them, the re-run moves the rest in."""
    from gitops_lab.adapters.repo import beside

    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    wc = tmp_path / "wc"
    renames = []
    real_rename = beside.os.rename

    def power_loss_after_two(src, dst):
        if len(renames) == 2:
            raise KeyboardInterrupt  # stands for the process ending here
        renames.append(dst)
        real_rename(src, dst)

    monkeypatch.setattr(beside.os, "rename", power_loss_after_two)
    assert cli("repo", "init", str(wc), "--remote", str(remote)).exit_code == 130
    monkeypatch.setattr(beside.os, "rename", real_rename)
    assert len(list(wc.iterdir())) == 2 and not (wc / ".git").exists()  # half moved, no working copy yet

    again = cli("repo", "init", str(wc), "--remote", str(remote))
    assert again.exit_code == 0, again.output
    assert "finished moving into place the working copy an earlier, stopped `repo init` had built" in again.output
    assert not (tmp_path / ".wc.gitops-lab-seeding").exists()
    assert git(wc, "status", "--porcelain") == ""
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


def test_a_folder_in_the_way_without_the_tools_mark_is_never_removed(cli, tmp_path):
    wc = tmp_path / "wc"
    theirs = tmp_path / ".wc.gitops-lab-seeding"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine\n")
    result = cli("repo", "init", str(wc))
    assert result.exit_code != 0
    assert f"rm -r {theirs}" in _last_error_line(result.stderr)
    assert (theirs / "notes.txt").read_text() == "mine\n" and not wc.exists()


def test_repo_init_that_cannot_make_its_building_folder_is_one_line_and_touches_nothing(cli, tmp_path):
    in_the_way = tmp_path / ".wc.gitops-lab-seeding"
    in_the_way.write_text("a file of the user's\n")
    result = cli("repo", "init", str(tmp_path / "wc"))
    assert result.exit_code == 1
    line = _last_error_line(result.stderr)
    assert "cannot build the working copy beside" in line and f"move {in_the_way} out of the way" in line
    assert in_the_way.read_text() == "a file of the user's\n" and not (tmp_path / "wc").exists()

"""Remotes as people have them: a lab remote not named origin (followed through main's upstream, or refused
naming the remotes), `git://` remotes served by a real `git daemon`, and Windows line ends through a lab action.

A write is judged by the remote: the commit is there and the working copy agrees with it, or nothing changed
and the one error line says why and how to go on. Never a success for a commit that stayed local.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from helpers.paths import TESTDATA
from helpers.gitutil import git, remote_version

WRITES = [
    (["promote", "--to", "staging"], "Promote v2 to staging"),
    (["approve", "--env", "prod", "--version", "v2", "--by", "alice"], "Approve v2 for prod"),
    (["rollback", "--env", "staging"], "Roll back staging to v1"),
]


def _last_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines, "no error line"
    return lines[-1]


def _writes_reach(cli, wc: Path, remote: Path, tracking: str) -> None:
    """promote, approve and rollback each publish their one commit, and local main agrees with the remote."""
    for args, subject in WRITES:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert git(remote, "log", "-1", "--format=%s", "main") == subject
        assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main") == git(wc, "rev-parse", tracking)
    assert remote_version(remote, "staging") == "v1"


# -- a lab remote not named origin -----------------------------------------------------------------------------
def test_a_renamed_remote_is_followed_through_mains_upstream_by_promote_approve_and_rollback(lab, cli):
    wc, remote = lab
    git(wc, "remote", "rename", "origin", "lab")  # git moves main's upstream along: branch.main.remote = lab
    _writes_reach(cli, wc, remote, "lab/main")
    assert git(wc, "remote") == "lab"


def test_a_lab_records_its_start_and_publishes_its_solution_through_a_renamed_remote(lab, cli, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_LABS_DIR", str(TESTDATA / "labs"))
    wc, remote = lab
    git(wc, "remote", "rename", "origin", "lab")
    assert cli("lab", "start", "good").exit_code == 0
    assert git(remote, "rev-parse", "gitops-lab/lab/good/start^{commit}") == git(remote, "rev-parse", "main")
    solved = cli("lab", "solve")
    assert solved.exit_code == 0, solved.output
    assert git(remote, "log", "-1", "--format=%s", "main") == "Scale dev to 2 replicas"
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


def test_mains_upstream_wins_over_a_remote_named_origin(lab, cli, tmp_path):
    """origin is an old mirror; main follows the lab's remote: the write goes where main follows, not to origin."""
    wc, remote = lab
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(remote), str(mirror)], check=True)
    git(wc, "remote", "rename", "origin", "lab")
    git(wc, "remote", "add", "origin", str(mirror))
    before = git(mirror, "rev-parse", "main")
    _writes_reach(cli, wc, remote, "lab/main")
    assert git(mirror, "rev-parse", "main") == before  # the mirror got nothing


def test_remotes_main_does_not_follow_are_refused_naming_them_and_the_fix_works(lab, cli, tmp_path):
    wc, remote = lab
    git(wc, "remote", "rename", "origin", "lab")
    git(wc, "branch", "--unset-upstream")
    git(wc, "remote", "add", "backup", str(tmp_path / "elsewhere.git"))
    head = git(wc, "rev-parse", "HEAD")
    for args, _subject in WRITES:
        result = cli(*args)
        assert result.exit_code == 1, result.output
        line = _last_error_line(result.stderr)
        assert "backup, lab" in line and "follows none of them" in line and "nothing was changed" in line
        assert "--set-upstream-to" in line
        assert git(wc, "rev-parse", "HEAD") == head and git(wc, "status", "--porcelain") == ""
        assert git(remote, "rev-parse", "main") == head
    # The fix the line gives, for the lab's remote, as the user would type it.
    fix = re.search(r"`(git -C \S+ fetch \S+ && git -C \S+ branch --set-upstream-to \S+ main)`", line)
    assert fix, line
    subprocess.run(fix.group(1).replace("backup", "lab"), shell=True, check=True)
    _writes_reach(cli, wc, remote, "lab/main")


def test_a_learners_unpushed_commit_is_refused_naming_the_followed_remote(lab, cli):
    wc, remote = lab
    git(wc, "remote", "rename", "origin", "lab")
    git(wc, "commit", "--quiet", "--allow-empty", "-m", "WIP: mine")
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 1
    line = _last_error_line(result.stderr)
    assert "WIP: mine" in line and "`git push lab main`" in line and "git reset --hard lab/main" in line
    assert remote_version(remote, "staging") == "v1"


# -- git:// remotes --------------------------------------------------------------------------------------------
@pytest.fixture
def daemon_lab(lab):
    """(working copy, bare remote): the lab's remote served over git:// by a real `git daemon`."""
    from helpers.gitservers import git_server

    wc, remote = lab
    with git_server("git", remote.parent) as daemon:
        git(wc, "remote", "set-url", "origin", daemon.url(remote.name))
        yield wc, remote


def test_promote_approve_and_rollback_publish_over_git_protocol(daemon_lab, cli):
    wc, remote = daemon_lab
    assert git(wc, "remote", "get-url", "origin").startswith("git://")
    _writes_reach(cli, wc, remote, "origin/main")
    again = cli("promote", "--to", "staging")  # staging is v1 again: promoted once more, judged by the remote
    assert again.exit_code == 0 and remote_version(remote, "staging") == "v2"


def test_repo_init_seeds_and_clones_over_git_protocol(cli, tmp_path):
    from helpers.gitservers import git_server

    remote = tmp_path / "served" / "lab.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    with git_server("git", remote.parent) as daemon:
        url = daemon.url("lab.git")
        seeded = cli("repo", "init", str(tmp_path / "first"), "--remote", url)
        assert seeded.exit_code == 0 and "Seeded" in seeded.stdout, seeded.output
        assert git(remote, "rev-parse", "gitops-lab/seed^{commit}") == git(remote, "rev-parse", "main")
        cloned = cli("--name", "second", "repo", "init", str(tmp_path / "second"), "--remote", url)
        assert cloned.exit_code == 0 and "Cloned" in cloned.stdout, cloned.output
        assert git(tmp_path / "second", "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


# -- Windows line ends through a lab action --------------------------------------------------------------------
def test_a_lab_action_on_a_crlf_overlay_is_a_one_line_diff_and_stays_crlf(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("GITOPS_LAB_LABS_DIR", str(TESTDATA / "labs"))
    remote, wc = tmp_path / "remote.git", tmp_path / "wc"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    assert cli("repo", "init", str(wc), "--remote", str(remote)).exit_code == 0
    assert cli("lab", "start", "good").exit_code == 0
    path = wc / "overlays/dev/kustomization.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    git(wc, "commit", "--quiet", "-am", "Windows line ends")
    git(wc, "push", "--quiet", "origin", "main")

    solved = cli("lab", "solve")
    assert solved.exit_code == 0, solved.output
    assert git(remote, "log", "-1", "--format=%s", "main") == "Scale dev to 2 replicas"
    assert git(remote, "diff", "--numstat", "main~1", "main").split() == ["1", "1", "overlays/dev/kustomization.yaml"]
    shown = subprocess.run(
        ["git", "-C", str(remote), "cat-file", "blob", "main:overlays/dev/kustomization.yaml"],
        capture_output=True,
        check=True,
    ).stdout
    assert shown.count(b"\r\n") == shown.count(b"\n") and b"count: 2" in shown
    assert git(wc, "status", "--porcelain") == ""

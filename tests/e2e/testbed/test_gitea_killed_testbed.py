"""Gitea killed (SIGKILL to its process group, as when its pod is killed) in the middle of a promotion's push, of
opening its pull request and of merging it, then started again on the same data: the failed command says so in
one line with the fix and leaves the working copy as it was, and the next command asks Gitea what happened and
finishes the job, with one commit and one pull request (issue 20's faults).

A private Gitea (the testbed's build; the session's is shared and must stay up), reached through the loopback
proxy of tests/helpers/forgeproxy.py, which kills it at the moment a call comes (before Gitea sees it) or once
Gitea answered it (before the answer reaches the CLI); a push is caught inside Gitea by a hook that waits."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.faults import BACKUP_RE, act_when, cli_process, run_cli
from helpers.forgeproxy import proxied_lab
from helpers.gitutil import forge_version, git

from gitops_lab.adapters.forge.seed import load_or_create_accounts
from gitops_lab.state import state_root

LEARNER, REVIEWER = "kill-lea", "kill-rev"
PROMOTE = ["promote", "--to", "prod", "--no-wait"]


@pytest.fixture(scope="module")
def gitea(tmp_path_factory):
    """A Gitea of this module's own, which its tests kill and start again."""
    from testbed.binaries import FORGE_ONLY, missing_reason
    from testbed.forge import start_gitea

    reason = missing_reason(FORGE_ONLY)
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("killed-gitea")
    g = start_gitea(root / "gitea", root / "logs")
    yield g
    assert g.stop() == []


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "forge-credentials.json"
    load_or_create_accounts(path, learner=LEARNER, reviewers=(REVIEWER,), admin="kill-admin", engine="kill-engine")
    return path


@pytest.fixture
def lab(gitea, cli, tmp_path, creds):
    found = proxied_lab(gitea, cli, tmp_path, creds, LEARNER, REVIEWER, "kill")
    yield found
    found[2].stop()
    if not gitea.proc.alive():
        gitea.restart()  # for the next test, whatever this one left


def _stall_in_gitea(gitea, repo: str, hook: str, marker: Path) -> Path:
    """A hook of Gitea's repository (Gitea's own ``<hook>.d`` folder, which its hook script runs in order,
    after its own) that says it started and waits: a push caught inside Gitea, before (pre-receive) or
    after (post-receive) its refs are updated."""
    path = gitea.root / "repositories" / LEARNER / f"{repo}.git" / "hooks" / f"{hook}.d" / "zz-stall"
    path.write_text(f"#!/bin/sh\ncat >/dev/null\ntouch '{marker}'\nexec sleep 600\n")
    path.chmod(0o755)
    return path


def _one_error_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("error")]
    return line


@pytest.mark.parametrize("hook", ["pre-receive", "post-receive"])
def test_gitea_killed_while_the_promotion_branch_is_pushed(gitea, lab, tmp_path, hook):
    """Killed before Gitea updated its refs (pre-receive: the branch is not there) or after (post-receive: it is,
    but git never heard so): either way the command cannot know, says so, and keeps the commit; the next one asks."""
    wc, repo, proxy, api = lab
    head = git(wc, "rev-parse", "HEAD")
    stall = _stall_in_gitea(gitea, repo, hook, tmp_path / "pushing")
    failed = act_when(cli_process(PROMOTE, state_root()), tmp_path / "pushing", gitea.kill)
    assert failed.returncode != 0
    line = _one_error_line(failed.stderr)
    assert f"push to {gitea.url}/{LEARNER}/{repo}.git was cut off" in line
    assert "the promotion of prod to v2 may or may not have reached the remote" in line
    assert line.endswith(
        "re-run the same command to check: it asks the remote first, and says so if it is already done"
    )
    # the learner's working copy as it was; the commit kept on the backup ref the line names
    assert (git(wc, "rev-parse", "HEAD"), git(wc, "status", "--porcelain")) == (head, "")
    [kept] = BACKUP_RE.findall(line)
    assert git(wc, "log", "-1", "--format=%s", kept) == "Promote v2 to prod"

    stall.unlink()
    gitea.restart()
    landed = hook == "post-receive"
    assert api.has_branch(LEARNER, repo, "promote/prod-v2") == landed  # Gitea's truth, on the same data
    again = run_cli(PROMOTE, state_root())
    assert again.returncode == 0, again.stderr
    shown = git(wc, "log", "-1", "--format=%h (%s)", kept)
    if landed:
        assert f"an earlier run that was stopped during its push published {shown} to promote/prod-v2 after all" in (
            again.stdout
        )
        assert f"reusing promote/prod-v2 ({shown[:7]}), pushed by an earlier run" in again.stderr
    else:
        assert f"an earlier run's commit {shown} never reached" in again.stdout
    [pr] = api.pull_requests(LEARNER, repo, state="all")
    assert f"opened #{pr.number}" in again.stdout
    # one promotion commit on top of main: the kept one when Gitea had it, else the re-run's
    assert git(wc, "rev-parse", f"{pr.head_sha}^") == head
    assert (pr.head_sha == git(wc, "rev-parse", kept)) == landed
    assert git(wc, "rev-parse", "HEAD") == head
    third = run_cli(PROMOTE, state_root())
    assert third.returncode == 0 and f"pull request is open: #{pr.number}" in third.stdout
    assert len(api.pull_requests(LEARNER, repo, state="all")) == 1


@pytest.mark.parametrize("when", ["hold", "cut"])
def test_gitea_killed_while_the_pull_request_is_opened(gitea, lab, cli, when):
    """Killed as the call to open the pull request came (hold: Gitea never saw it) or once Gitea opened it (cut)."""
    wc, repo, proxy, api = lab
    head = git(wc, "rev-parse", "HEAD")
    setattr(proxy, when, ("POST", f"/repos/{LEARNER}/{repo}/pulls"))
    proxy.then = gitea.kill
    failed = cli(*PROMOTE)
    assert failed.exit_code != 0
    line = _one_error_line(failed.stderr)
    assert f"Gitea at {proxy.url} broke off its answer to POST /repos/{LEARNER}/{repo}/pulls" in line
    assert line.endswith("then run the command again (it reads what Gitea already has first)")
    assert git(wc, "rev-parse", "HEAD") == head

    gitea.restart()
    pushed = api.call("GET", f"/repos/{LEARNER}/{repo}/branches/promote%2Fprod-v2")["commit"]["id"]
    assert len(api.pull_requests(LEARNER, repo, state="all")) == (1 if when == "cut" else 0)
    again = cli(*PROMOTE)
    assert again.exit_code == 0, again.output
    [pr] = api.pull_requests(LEARNER, repo, state="all")
    assert (pr.head_sha, pr.state) == (pushed, "open")  # the one commit pushed before the kill
    said = f"pull request is open: #{pr.number}" if when == "cut" else f"opened #{pr.number}"
    assert said in again.stdout
    assert git(wc, "rev-parse", "HEAD") == head


@pytest.mark.parametrize("when", ["hold", "cut"])
def test_gitea_killed_during_the_merge(gitea, lab, cli, when):
    """Killed as the merge call came (hold: not merged) or once Gitea merged (cut): the failed command says it
    does not know; the next one asks Gitea, merges or finishes the merge (branch deleted, local main at it)."""
    wc, repo, proxy, api = lab
    assert cli(*PROMOTE).exit_code == 0
    assert cli("approve", "--env", "prod", "--version", "v2", "--by", REVIEWER).exit_code == 0
    [pr] = api.pull_requests(LEARNER, repo, state="open")
    head = git(wc, "rev-parse", "HEAD")
    setattr(proxy, when, ("POST", f"/pulls/{pr.number}/merge"))
    proxy.then = gitea.kill
    failed = cli(*PROMOTE)
    assert failed.exit_code != 0
    line = _one_error_line(failed.stderr)
    assert f"whether Gitea merged pull request #{pr.number} is not known" in line
    assert "run the command again: it asks Gitea whether the pull request is merged" in line
    assert (git(wc, "rev-parse", "HEAD"), git(wc, "status", "--porcelain")) == (head, "")

    gitea.restart()
    assert api.pull_request(LEARNER, repo, pr.number).merged == (when == "cut")  # Gitea's truth
    again = cli(*PROMOTE)
    assert again.exit_code == 0, again.output
    done = api.pull_request(LEARNER, repo, pr.number)
    if when == "cut":
        assert (
            f"Gitea merged pull request #{pr.number} (approved by {REVIEWER}) for an earlier run that did not hear "
            "its answer: prod now runs v2 (was v1); deleted its branch promote/prod-v2" in again.stdout
        )
    else:
        assert f"merged pull request #{pr.number} (approved by {REVIEWER}): prod now runs v2 (was v1)" in again.stdout
    assert done.merged and [p.number for p in api.pull_requests(LEARNER, repo, state="all")] == [pr.number]
    assert not api.has_branch(LEARNER, repo, "promote/prod-v2")
    assert git(wc, "rev-parse", "HEAD") == git(wc, "rev-parse", "origin/main") == done.merge_sha
    assert forge_version(api, LEARNER, repo, "prod") == "v2"
    third = cli(*PROMOTE)
    assert third.exit_code == 0 and "prod already runs v2" in third.stdout

"""Faults around the pull request's operations, against the testbed's real Gitea reached through a loopback proxy
that holds or cuts off one API call: a promote killed (SIGKILL, a real CLI process) between its branch push and
opening its pull request is finished by the re-run, which reuses the branch and opens one pull request; a merge whose
answer is lost is asked about and reported merged.

The session's Gitea is shared by every test: the accounts here are this module's own."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from helpers.faults import cli_process, run_cli, signal_when
from helpers.forgeproxy import proxied_lab
from helpers.gitutil import git

from gitops_lab.adapters.forge.seed import load_or_create_accounts
from gitops_lab.state import state_root

LEARNER, REVIEWER = "rbf-lea", "rbf-rev"


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rbf") / "forge-credentials.json"
    load_or_create_accounts(path, learner=LEARNER, reviewers=(REVIEWER,), admin="rbf-admin", engine="rbf-engine")
    return path


@pytest.fixture
def proxied(testbed_gitea, cli, tmp_path, creds):
    """A lab on the session's Gitea whose forge URL is the proxy (helpers/forgeproxy.py)."""
    lab = proxied_lab(testbed_gitea, cli, tmp_path, creds, LEARNER, REVIEWER, "rbf")
    yield lab
    lab[2].stop()


def test_a_promote_killed_before_opening_its_pull_request_is_finished_once_by_the_rerun(proxied):
    wc, repo, proxy, api = proxied
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


def test_a_merge_whose_answer_is_lost_is_asked_about_and_reported_merged(proxied, cli):
    wc, repo, proxy, api = proxied
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

"""Rollback of a review-required environment on a lab whose remote is the testbed's real Gitea: it goes through a
pull request merged at once (by the admin account past the rule, which the merge records), while a promotion still
needs its reviews (1 of 2 is a wait, not an error); and Gitea unreachable is one line, with nothing changed.

The session's Gitea is shared by every test: the accounts here are this module's own."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from helpers.gitutil import forge_version, git

from gitops_lab.adapters.forge.gitea import BranchRule, GiteaAPI
from gitops_lab.adapters.forge.seed import LabRepository, load_or_create_accounts
from gitops_lab.errors import ForgeError

LEARNER, REVIEWERS, ADMIN = "rbk-lea", ("rbk-rev1", "rbk-rev2"), "rbk-admin"


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rbk") / "forge-credentials.json"
    load_or_create_accounts(path, learner=LEARNER, reviewers=REVIEWERS, admin=ADMIN, engine="rbk-engine")
    return path


def _forge_lab(gitea, cli, tmp_path: Path, creds: Path, repo: str, approvals: int = 1):
    accounts = load_or_create_accounts(creds, learner=LEARNER, reviewers=REVIEWERS)
    gitea.seed_lab(accounts, LabRepository(repo))
    wc = tmp_path / "wc"
    remote = f"{gitea.url}/{LEARNER}/{repo}.git"
    init = cli("repo", "init", str(wc), "--remote", remote, "--forge-url", gitea.url, "--forge-credentials", str(creds))
    assert init.exit_code == 0, init.output
    rule = BranchRule(required_approvals=approvals, push_files="overlays/dev/**;overlays/staging/**")
    gitea.seed_lab(accounts, LabRepository(repo, rule=rule))
    return wc, accounts, GiteaAPI(gitea.url, accounts.learner)


def _promote_prod(cli, api: GiteaAPI, repo: str, reviewers=REVIEWERS[:1]) -> int:
    assert cli("promote", "--to", "staging", "--no-wait").exit_code == 0
    opened = cli("promote", "--to", "prod", "--no-wait")
    assert opened.exit_code == 0, opened.output
    [pr] = api.pull_requests(LEARNER, repo, state="open")
    for name in reviewers:
        assert cli("approve", "--env", "prod", "--version", "v2", "--by", name).exit_code == 0
    return pr.number


def test_rollback_of_prod_is_a_pull_request_the_admin_merges_at_once(testbed_gitea, cli, tmp_path, creds):
    wc, accounts, api = _forge_lab(testbed_gitea, cli, tmp_path, creds, "rbk-flow")
    number = _promote_prod(cli, api, "rbk-flow")
    assert cli("promote", "--to", "prod", "--no-wait").exit_code == 0
    assert forge_version(api, LEARNER, "rbk-flow", "prod") == "v2"

    back = cli("rollback", "--env", "prod", "--no-wait")
    assert back.exit_code == 0, back.output
    [pr] = [p for p in api.pull_requests(LEARNER, "rbk-flow", state="closed") if p.number != number]
    # its branch, rollback/prod-v1, is deleted after the merge (Gitea then names the head refs/pull/N/head)
    assert (pr.title, pr.author, pr.merged, pr.reviews) == (
        "Roll back prod to v1",
        LEARNER,
        True,
        (),
    )
    assert api.pull_request(LEARNER, "rbk-flow", pr.number).merged_by == ADMIN  # on record: who merged unreviewed
    assert f"rolled prod back from v2 to v1: merged pull request #{pr.number} (merged by {ADMIN} without review)" in (
        back.stdout
    )
    assert forge_version(api, LEARNER, "rbk-flow", "prod") == "v1"
    assert not api.has_branch(LEARNER, "rbk-flow", "rollback/prod-v1")
    assert git(wc, "rev-parse", "HEAD") == git(wc, "rev-parse", "origin/main") == pr.merge_sha
    history = json.loads(cli("history", "--env", "prod", "--output", "json").stdout)
    assert (history[0]["action"], history[0]["version"], history[0]["commit"]) == ("rollback", "v1", pr.merge_sha)
    assert (history[0]["pull_request"]["merged_by"], history[0]["pull_request"]["approvers"]) == (ADMIN, [])
    assert f"#{pr.number} merged by {ADMIN} without review" in cli("history", "--env", "prod").stdout

    again = cli("rollback", "--env", "prod", "--no-wait")
    assert again.exit_code != 0 and "prod has no promotion to roll back" in again.stderr

    # the bypass is the admin's alone: the learner cannot force a promotion in unreviewed
    assert cli("promote", "--to", "prod", "--no-wait").exit_code == 0
    [open_pr] = api.pull_requests(LEARNER, "rbk-flow", state="open")
    with pytest.raises(ForgeError) as refused:
        api.merge(LEARNER, "rbk-flow", open_pr.number, force=True)
    assert refused.value.status == 405
    assert forge_version(api, LEARNER, "rbk-flow", "prod") == "v1"


def test_one_approval_of_two_is_a_wait_not_a_merge_error(testbed_gitea, cli, tmp_path, creds):
    wc, _, api = _forge_lab(testbed_gitea, cli, tmp_path, creds, "rbk-two", approvals=2)
    number = _promote_prod(cli, api, "rbk-two", reviewers=REVIEWERS[:1])
    head = git(wc, "rev-parse", "HEAD")

    rerun = cli("promote", "--to", "prod", "--no-wait")
    assert rerun.exit_code == 0, rerun.output
    assert f"pull request is open: #{number}" in rerun.stdout
    assert f"waiting for review by 2 of {', '.join(REVIEWERS)} (1 of 2: approved by {REVIEWERS[0]})" in rerun.stdout
    assert forge_version(api, LEARNER, "rbk-two", "prod") == "v1" and git(wc, "rev-parse", "HEAD") == head

    assert cli("approve", "--env", "prod", "--version", "v2", "--by", REVIEWERS[1]).exit_code == 0
    merged = cli("promote", "--to", "prod", "--no-wait")
    assert merged.exit_code == 0, merged.output
    assert f"merged pull request #{number} (approved by {', '.join(REVIEWERS)})" in merged.stdout
    assert forge_version(api, LEARNER, "rbk-two", "prod") == "v2"


def test_gitea_unreachable_is_one_line_and_changes_nothing(testbed_gitea, cli, tmp_path, creds):
    wc, _, api = _forge_lab(testbed_gitea, cli, tmp_path, creds, "rbk-down")
    assert cli("promote", "--to", "staging", "--no-wait").exit_code == 0
    with socket.socket() as s:  # a port nothing listens on: Gitea stopped
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    state_file = tmp_path / "state" / "gitops-lab" / "state.json"
    state_file.write_text(state_file.read_text().replace(testbed_gitea.url, dead))
    head, status = git(wc, "rev-parse", "HEAD"), git(wc, "status", "--porcelain")
    refs = git(wc, "for-each-ref")

    for args in (("promote", "--to", "prod", "--no-wait"), ("rollback", "--env", "prod", "--to", "v1", "--no-wait")):
        down = cli(*args)
        assert down.exit_code != 0
        assert f"cannot reach Gitea at {dead}" in down.stderr
        assert len([line for line in down.stderr.splitlines() if line.startswith("error")]) == 1
        assert (git(wc, "rev-parse", "HEAD"), git(wc, "status", "--porcelain")) == (head, status)
        assert git(wc, "for-each-ref") == refs
    assert api.pull_requests(LEARNER, "rbk-down", state="all") == []

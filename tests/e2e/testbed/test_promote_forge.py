"""Promotion by pull request on a lab whose remote is a real Gitea (the testbed's, built from its pinned module;
skipped when it is not built): `promote` opens the pull request with the gates as commit statuses, `approve` is a
reviewer's review, a re-run merges it once approved, and `history` shows the pull request and its approver.

The session's Gitea is shared by every test: the accounts here are this module's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.gitutil import forge_version, git

from gitops_lab.adapters.forge.gitea import BranchRule, GiteaAPI
from gitops_lab.adapters.forge.seed import LabRepository, load_or_create_accounts

LEARNER, REVIEWER = "pria", "prue"
# dev and staging stay plain pushes; prod changes only through an approved pull request
RULE = BranchRule(push_files="overlays/dev/**;overlays/staging/**")


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    """This module's accounts, kept once for the session's Gitea (each test seeds its own repository)."""
    path = tmp_path_factory.mktemp("prflow") / "forge-credentials.json"
    load_or_create_accounts(path, learner=LEARNER, reviewers=(REVIEWER,), admin="prflow-admin", engine="prflow-engine")
    return path


def _forge_lab(gitea, cli, tmp_path: Path, creds: Path, repo: str):
    """A lab repository `repo` on Gitea, seeded by `repo init --forge-url`, then protected by the rule."""
    accounts = load_or_create_accounts(creds, learner=LEARNER, reviewers=(REVIEWER,))
    gitea.seed_lab(accounts, LabRepository(repo))
    # no password in the URL: git authenticates as the learner of the credentials file
    remote = f"{gitea.url}/{LEARNER}/{repo}.git"
    wc = tmp_path / "wc"
    args = ["--remote", remote, "--forge-url", gitea.url, "--forge-credentials", str(creds)]
    init = cli("repo", "init", str(wc), *args)
    assert init.exit_code == 0, init.output
    gitea.seed_lab(accounts, LabRepository(repo, rule=RULE))
    return wc, accounts, GiteaAPI(gitea.url, accounts.learner)


def test_prod_goes_through_a_pull_request_a_reviewer_approves(testbed_gitea, cli, tmp_path, creds):
    wc, accounts, api = _forge_lab(testbed_gitea, cli, tmp_path, creds, "flow")
    # staging is not review-required: a plain push, as without a forge
    staged = cli("promote", "--to", "staging", "--no-wait")
    assert staged.exit_code == 0, staged.output
    assert forge_version(api, LEARNER, "flow", "staging") == "v2"

    opened = cli("promote", "--to", "prod", "--no-wait")
    assert opened.exit_code == 0, opened.output
    [pr] = api.pull_requests(LEARNER, "flow", state="open")
    assert (pr.head, pr.base, pr.author, pr.title) == ("promote/prod-v2", "main", LEARNER, "Promote v2 to prod")
    assert f"opened #{pr.number} {testbed_gitea.url}/{LEARNER}/flow/pulls/{pr.number}; waiting for review" in (
        opened.stdout
    )
    assert forge_version(api, LEARNER, "flow", "prod") == "v1"  # main is unchanged until the merge
    assert forge_version(api, LEARNER, "flow", "prod", "promote/prod-v2") == "v2"
    assert git(wc, "rev-parse", "HEAD") == git(wc, "rev-parse", "origin/main")  # the local main did not move
    assert api.statuses(LEARNER, "flow", pr.head_sha) == {
        "gitops-lab/data-quality": "success",
        "gitops-lab/model-eval": "success",
        "gitops-lab/policy": "success",
    }

    early = cli("promote", "--to", "prod", "--merge", "--no-wait")
    assert early.exit_code == 4
    assert (
        f"pull request #{pr.number} cannot be merged yet: prod needs 1 approving review by one of {REVIEWER}, "
        "and it has none" in early.stderr
    )
    own = cli("approve", "--env", "prod", "--version", "v2", "--by", LEARNER)
    assert own.exit_code != 0
    assert f"{LEARNER} opened pull request #{pr.number} and cannot approve it" in own.stderr
    outsider = cli("approve", "--env", "prod", "--version", "v2", "--by", "prflow-engine")
    assert outsider.exit_code == 2
    assert f"prflow-engine is not among the approvers of main ({REVIEWER})" in outsider.stderr
    assert api.pull_request(LEARNER, "flow", pr.number).reviews == ()

    approved = cli("approve", "--env", "prod", "--version", "v2", "--by", REVIEWER)
    assert approved.exit_code == 0, approved.output
    assert api.pull_request(LEARNER, "flow", pr.number).approvers == [REVIEWER]

    merged = cli("promote", "--to", "prod", "--no-wait")
    assert merged.exit_code == 0, merged.output
    assert f"merged pull request #{pr.number} (approved by {REVIEWER}): prod now runs v2 (was v1)" in merged.stdout
    assert forge_version(api, LEARNER, "flow", "prod") == "v2"
    assert git(wc, "rev-parse", "HEAD") == git(wc, "rev-parse", "origin/main")
    assert "v2" in (wc / "overlays/prod/kustomization.yaml").read_text()
    assert api.pull_request(LEARNER, "flow", pr.number).merged

    history = json.loads(cli("history", "--env", "prod", "--output", "json").stdout)
    done = api.pull_request(LEARNER, "flow", pr.number)
    # one entry, at the merge that brought the promotion onto main, with the promotion's own record
    assert [(e["action"], e["version"], e["commit"]) for e in history[:2]] == [
        ("promote", "v2", done.merge_sha),
        ("seed", "v1", history[1]["commit"]),
    ]
    assert history[0]["trailers"]["Promoted-From"] == "staging"
    assert (history[0]["pull_request"]["number"], history[0]["pull_request"]["approvers"]) == (pr.number, [REVIEWER])
    assert history[1]["pull_request"] is None  # the seed came through no pull request
    table = cli("history", "--env", "prod").stdout
    assert f"#{pr.number} approved by {REVIEWER}" in table.splitlines()[1]

    again = cli("promote", "--to", "prod", "--no-wait")
    assert again.exit_code == 0 and "prod already runs v2" in again.stdout
    # the learner's password stays in the 0600 credentials file: not in .git/config, the state file or any output
    state = (tmp_path / "state" / "gitops-lab" / "state.json").read_text()
    seen = [state, (wc / ".git" / "config").read_text(), opened.output, early.output, merged.output, table]
    assert not [text for text in seen if accounts.learner.password in text]


def test_a_rerun_finds_the_same_pull_request_and_adds_no_commit(testbed_gitea, cli, tmp_path, creds):
    wc, _, api = _forge_lab(testbed_gitea, cli, tmp_path, creds, "rerun")
    assert cli("promote", "--to", "staging", "--no-wait").exit_code == 0
    assert cli("promote", "--to", "prod", "--no-wait").exit_code == 0
    [first] = api.pull_requests(LEARNER, "rerun", state="open")

    again = cli("promote", "--to", "prod", "--no-wait")
    assert again.exit_code == 0, again.output
    assert f"pull request is open: #{first.number}" in again.stdout and "waiting for review" in again.stdout
    [same] = api.pull_requests(LEARNER, "rerun", state="open")
    assert (same.number, same.head_sha) == (first.number, first.head_sha)
    tip = api.call("GET", f"/repos/{LEARNER}/rerun/branches/promote%2Fprod-v2")["commit"]["id"]
    assert tip == first.head_sha

    missing = cli("approve", "--env", "prod", "--version", "v3", "--by", REVIEWER)
    assert missing.exit_code == 2
    assert "no open pull request promotes v3 to prod" in missing.stderr and "branch promote/prod-v3" in missing.stderr
    stranger = cli("approve", "--env", "prod", "--version", "v2", "--by", "nobody-here")
    assert stranger.exit_code == 2
    assert "--by nobody-here: no such account in the forge credentials file" in stranger.stderr

"""`lab report` with a forge: the design document's pull request, its reviews and verdicts, read from a real
Gitea (the testbed's, built from its pinned module; skipped when it is not built)."""

from __future__ import annotations

import json

import pytest
from helpers.designdoc import AGREEING, push_design
from helpers.gitutil import git

from gitops_lab.adapters.forge.gitea import PUSH_SETTLE_SECONDS, GiteaAPI
from gitops_lab.adapters.forge.seed import LabRepository, gitea_cli_admin_creator, load_or_create_accounts, seed_lab

pytestmark = pytest.mark.testbed


def test_the_design_pull_request_and_its_reviews_are_in_the_report(testbed_gitea, lab, cli, tmp_path):
    wc, _ = lab
    creds = tmp_path / "forge-credentials.json"
    accounts = load_or_create_accounts(
        creds, learner="lena", reviewers=("rhea",), admin="evidence-admin", engine="evidence-engine"
    )
    seed_lab(testbed_gitea.url, accounts, gitea_cli_admin_creator(testbed_gitea.cli()), LabRepository("lab"))
    host = testbed_gitea.url.removeprefix("http://")
    url = f"http://lena:{accounts.learner.password}@{host}/lena/lab.git"
    git(wc, "push", "-q", url, "main:main")
    git(wc, "checkout", "-q", "-b", "design")
    push_design(wc, AGREEING, push=False)
    git(wc, "push", "-q", url, "design:design")
    learner = GiteaAPI(testbed_gitea.url, accounts.learner)
    assert learner.has_branch("lena", "lab", "design", settle=PUSH_SETTLE_SECONDS)  # Gitea records pushes from a queue
    pr = learner.open_pull_request("lena", "lab", "design", "main", "Pipeline design document", "")
    [rhea] = accounts.reviewers
    learner.as_user(rhea).review("lena", "lab", pr.number, "APPROVED", "Scores 2,2,1,2,2,1,2: 12 of 14")

    args = ["--forge-url", testbed_gitea.url, "--forge-credentials", str(creds), "--learner", "lena"]
    data = json.loads(cli("lab", "report", "--repo", str(wc), *args, "--output", "json").stdout)
    [evidence] = data["learners"]
    assert evidence["verdicts"]["peer-review"] == {"status": "passed", "summary": f"#{pr.number} approved by rhea"}
    [found] = evidence["pull_requests"]
    assert found["url"] == f"{testbed_gitea.url}/lena/lab/pulls/{pr.number}"
    assert [(r["user"], r["state"], r["body"]) for r in found["reviews"]] == [
        ("rhea", "APPROVED", "Scores 2,2,1,2,2,1,2: 12 of 14")
    ]
    assert evidence["commit_url"] == f"{testbed_gitea.url}/lena/lab/commit/{evidence['commit']}"

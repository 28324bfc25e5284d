"""`lab report` with a forge: the design document's pull request, its reviews and verdicts, read from a real
Gitea (the testbed's, built from its pinned module; skipped when it is not built)."""

from __future__ import annotations

import json

from helpers.designdoc import AGREEING, push_design
from helpers.gitutil import git

from gitops_lab.adapters.forge.gitea import PUSH_SETTLE_SECONDS, GiteaAPI
from gitops_lab.adapters.forge.seed import LabRepository, gitea_cli_admin_creator, load_or_create_accounts, seed_lab


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
    as_rhea = learner.as_user(rhea)
    as_rhea.review("lena", "lab", pr.number, "APPROVED", "Scores 2,2,1,2,2,1,2: 12 of 14")  # not the score line's form
    args = ["--forge-url", testbed_gitea.url, "--forge-credentials", str(creds), "--learner", "lena"]

    def report():
        data = json.loads(cli("lab", "report", "--repo", str(wc), *args, "--output", "json").stdout)
        [evidence] = data["learners"]
        return evidence

    malformed = (
        "malformed score line (line 1 of the review): "
        "not in the form `Scores: 2,2,1,2,2,1,2 (12/14)`: 'Scores 2,2,1,2,2,1,2: 12 of 14'"
    )
    evidence = report()
    assert evidence["verdicts"]["peer-review"] == {
        "status": "failed",
        "summary": f"no approval meets the rubric (10 or more of 14 with no 0): rhea on #{pr.number}: {malformed}",
    }
    text = cli("lab", "report", "--repo", str(wc), *args).stdout
    assert f"lena review #{pr.number} rhea APPROVED: {malformed}\n" in text

    scored = "Clear gates; the paging is thin.\n\nScores: 2,2,1,2,2,1,2 (12/14)"
    as_rhea.review("lena", "lab", pr.number, "APPROVED", scored)
    evidence = report()
    assert evidence["verdicts"]["peer-review"] == {
        "status": "passed",
        "summary": f"#{pr.number} approved by rhea at 12/14",
    }
    [found] = evidence["pull_requests"]
    assert found["url"] == f"{testbed_gitea.url}/lena/lab/pulls/{pr.number}"
    # the pinned Gitea lists the second review only (the first is not kept beside it); the latest is what counts
    assert [(r["user"], r["state"], r["body"], r["score"]["status"]) for r in found["reviews"]][-1] == (
        "rhea",
        "APPROVED",
        scored,
        "ok",
    )
    score = found["reviews"][-1]["score"]
    assert (score["scores"], score["total"], score["maximum"], score["meets_pass_mark"]) == (
        [2, 2, 1, 2, 2, 1, 2],
        12,
        14,
        True,
    )
    assert evidence["commit_url"] == f"{testbed_gitea.url}/lena/lab/commit/{evidence['commit']}"
    out = tmp_path / "evidence"
    cli("lab", "report", "--repo", str(wc), *args, "--out", str(out))
    assert "    - scores 2,2,1,2,2,1,2 (12/14), meets the pass mark\n" in (out / "evidence.md").read_text()

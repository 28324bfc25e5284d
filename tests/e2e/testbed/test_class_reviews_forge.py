"""`class reviews assign` and the peer-review verdict on a real Gitea (the testbed's; skipped when not built).

Three learners (cr-ana, cr-ben, cr-cem) open their design pull request on their own ``lab`` repository; a
fourth (cr-dov) has pushed nothing. Accounts are prefixed ``cr-``: the Gitea is shared by the session.
"""

from __future__ import annotations

import json

from helpers.forgeclass import open_design_class

from gitops_lab.assessment.evidence import ForgeRepository, learner_evidence
from gitops_lab.classroom.record import ClassRecord, GitServerRecord, learner_env_name
from gitops_lab.state import EnvironmentState

AUTHORS = ("cr-ana", "cr-ben", "cr-cem")
NOT_READY = "cr-dov"


def test_reviews_are_assigned_once_and_only_an_assigned_approval_passes(testbed_gitea, lab, cli, tmp_path):
    wc, _ = lab
    made = open_design_class(testbed_gitea.url, testbed_gitea.cli(), wc, tmp_path, "cr", AUTHORS, NOT_READY)
    creds, accounts, admin, pulls, roster = made.credentials, made.accounts, made.admin, made.pulls, made.roster
    args = ["--forge-url", testbed_gitea.url, "--forge-credentials", str(creds), "--learners", str(roster)]

    first = cli("class", "reviews", "assign", *args, "--per-learner", "1", "--seed", "5", "--output", "json")
    assert first.exit_code == 0, first.output
    done = {a["learner"]: a for a in json.loads(first.stdout)}
    assert {n: a["status"] for n, a in done.items()} == {**dict.fromkeys(AUTHORS, "assigned"), NOT_READY: "not ready"}
    assert "no repository cr-dov/lab" in done[NOT_READY]["reason"]
    reviewers = {n: a["reviewers"] for n, a in done.items()}
    assert all(n not in rs and len(rs) == 1 for n, rs in reviewers.items())
    assert sorted(r for rs in reviewers.values() for r in rs) == sorted((*AUTHORS, NOT_READY))  # each reviews one
    for author in AUTHORS:
        [reviewer] = reviewers[author]
        assert done[author]["pull_request"] == pulls[author]
        assert done[author]["requested"] == [reviewer]
        as_reviewer = admin.as_user(accounts.class_learner(reviewer))
        assert as_reviewer.repository(author, "lab") is not None  # the reviewer can read the author's repository
        assert admin.pull_request(author, "lab", pulls[author]).requested_reviewers == (reviewer,)

    again = cli("class", "reviews", "assign", *args, "--per-learner", "1", "--seed", "5", "--output", "json")
    assert again.exit_code == 0, again.output
    redone = {a["learner"]: a for a in json.loads(again.stdout)}
    assert {n: a["reviewers"] for n, a in redone.items()} == reviewers
    assert all(a["granted"] == [] and a["requested"] == [] for a in redone.values())
    for author in AUTHORS:
        assert admin.pull_request(author, "lab", pulls[author]).requested_reviewers == tuple(reviewers[author])
    other = cli("class", "reviews", "assign", *args, "--per-learner", "1", "--seed", "6")
    assert other.exit_code != 0 and "--seed 5" in other.output  # another plan is refused, not mixed in

    author = AUTHORS[0]
    [assigned] = reviewers[author]
    [unassigned] = [n for n in AUTHORS if n not in (author, assigned)][:1] or [NOT_READY]
    forge = ForgeRepository(admin, author, "lab")

    def verdict():
        evidence = learner_evidence(author, wc, "HEAD", forge, assigned_reviewers=[assigned])
        return evidence.verdict("peer-review"), evidence.assigned_reviews()

    assert verdict()[1] == {assigned: "requested"}
    admin.ensure_can_read(author, "lab", unassigned)  # a classmate who can read it, but was not assigned
    admin.as_user(accounts.class_learner(unassigned)).review(author, "lab", pulls[author], "APPROVED")
    failed, _ = verdict()
    assert failed.status == "failed" and f"approved by {unassigned}, who is not assigned" in failed.summary
    as_assigned = admin.as_user(accounts.class_learner(assigned))
    as_assigned.review(author, "lab", pulls[author], "APPROVED", "2,2,2,2,2,2,2")  # scores, but no score line
    unscored, _ = verdict()
    assert unscored.status == "failed" and unscored.summary == (
        "no approval by an assigned reviewer meets the rubric (10 or more of 14 with no 0): "
        f"{assigned} on #{pulls[author]}: no score line (write one like `Scores: 2,2,1,2,2,1,2 (12/14)`); "
        f"approved by {unassigned}, who is not assigned"
    )
    as_assigned.review(author, "lab", pulls[author], "APPROVED", "All there.\nScores: 2,2,2,2,2,2,2 (14/14)")
    passed, states = verdict()
    assert (passed.status, passed.summary) == ("passed", f"#{pulls[author]} approved by {assigned} at 14/14 (assigned)")
    assert states == {assigned: "APPROVED"}

    # class report --forge-url: the same verdicts, per learner, judged by the kept plan
    ClassRecord(
        "gitops-lab", "flux", None, None, GitServerRecord("folder", str(tmp_path), "http://h"), [*AUTHORS]
    ).save()
    for name in AUTHORS:
        EnvironmentState(name=learner_env_name("gitops-lab", name), repo_path=str(wc), tenant=name).save()
    forge_args = ["--forge-url", testbed_gitea.url, "--forge-credentials", str(creds)]
    report = cli("class", "report", *forge_args, "--output", "json")
    assert report.exit_code == 0, report.output
    verdicts = {e["learner"]: e["verdicts"]["peer-review"]["status"] for e in json.loads(report.stdout)["learners"]}
    assert verdicts == {author: "passed", **{n: "failed" for n in AUTHORS if n != author}}

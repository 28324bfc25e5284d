"""`class status --forge-url`: each learner's peer review, received and given, read from a real Gitea (the
testbed's; skipped when not built) under the plan `class reviews assign` kept.

Three learners (cs-ana, cs-ben, cs-cem) open their design pull request; a fourth (cs-dov) has pushed nothing; a
fifth (cs-eve) joined after the reviews were assigned. Accounts are prefixed ``cs-``: the Gitea is shared by the
session. The rest of `class status` needs the class's cluster (tests/e2e/testbed/test_classroom_e2e.py); here the
REVIEWS column is built from real review standings on rows of the same shape.
"""

from __future__ import annotations

from helpers.forgeclass import open_design_class

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.classroom.reviews import load_plan, review_standings
from gitops_lab.classroom.status import LearnerRow
from gitops_lab.cli.classroom import status_table

AUTHORS = ("cs-ana", "cs-ben", "cs-cem")
NOT_READY = "cs-dov"
LATE = "cs-eve"


def _row(learner: str, reviews: dict | None) -> LearnerRow:
    serving = {"state": "ok", "version": "v1", "sync": "Synced", "health": "Healthy"}
    return LearnerRow(learner, None, None, 0, 0, {env: dict(serving) for env in ENVIRONMENTS}, reviews=reviews)


def test_class_status_shows_each_learners_reviews_received_and_given(testbed_gitea, lab, cli, tmp_path):
    wc, _ = lab
    made = open_design_class(testbed_gitea.url, testbed_gitea.cli(), wc, tmp_path, "cs", AUTHORS, NOT_READY)
    creds, accounts, admin, pulls, roster = made.credentials, made.accounts, made.admin, made.pulls, made.roster
    forge_args = ["--forge-url", testbed_gitea.url, "--forge-credentials", str(creds)]
    assigned = cli("class", "reviews", "assign", *forge_args, "--learners", str(roster), "--per-learner", "1")
    assert assigned.exit_code == 0, assigned.output
    plan = load_plan("gitops-lab")
    assert plan is not None
    reviewer_of = {author: plan.reviewers[author][0] for author in (*AUTHORS, NOT_READY)}
    everyone = [*AUTHORS, NOT_READY, LATE]

    before = review_standings(plan, admin, everyone)
    assert {n: s.summary for n, s in before.items()} == {
        **{n: "requested; gave 0/1" for n in AUTHORS},
        NOT_READY: "not ready; gave 0/1",
        LATE: "not assigned; gave -",
    }

    ana, ben, cem = AUTHORS
    as_reviewer = {n: admin.as_user(accounts.class_learner(reviewer_of[n])) for n in AUTHORS}
    as_reviewer[ana].review(ana, "lab", pulls[ana], "APPROVED", "meets the rubric")
    as_reviewer[ben].review(ben, "lab", pulls[ben], "REQUEST_CHANGES", "the rollback criteria are missing")
    as_reviewer[cem].review(cem, "lab", pulls[cem], "COMMENT", "reading it")

    after = review_standings(plan, admin, everyone)
    assert {n: after[n].received for n in everyone} == {
        ana: "1/1 approved",
        ben: "changes requested",
        cem: "commented",
        NOT_READY: "not ready",
        LATE: "not assigned",
    }
    given = {reviewer_of[ana]: "1/1", reviewer_of[ben]: "1/1", reviewer_of[cem]: "0/1", reviewer_of[NOT_READY]: "0/1"}
    assert {n: after[n].given for n in (*AUTHORS, NOT_READY)} == given  # a comment alone is no verdict yet
    assert after[ana].reviewers == {reviewer_of[ana]: "APPROVED"}
    assert after[reviewer_of[NOT_READY]].reviewing == {NOT_READY: "not ready"}
    assert after[reviewer_of[ben]].reviewing == {ben: "REQUEST_CHANGES"}

    # the table: a REVIEWS column with both, and the JSON row carries the standing
    rows = [_row(n, after[n].to_dict()) for n in everyone]
    lines = status_table(rows).splitlines()
    assert lines[0].split() == ["LEARNER", "LAB", "STEP", "CHECKS", "DEV", "STAGING", "PROD", "REVIEWS"]
    cells = {line.split()[0]: line.split("ok", 3)[-1].strip() for line in lines[1:]}
    assert cells[ana] == f"1/1 approved; gave {given[ana]}"
    assert cells[ben] == f"changes requested; gave {given[ben]}"
    assert cells[NOT_READY] == f"not ready; gave {given[NOT_READY]}"
    assert cells[LATE] == "not assigned; gave -"
    assert rows[0].to_dict()["reviews"]["received"] == "1/1 approved"

    # without the forge: no column, no key, the table as it always was
    plain = [_row(n, None) for n in everyone]
    assert status_table(plain).splitlines()[0].split() == ["LEARNER", "LAB", "STEP", "CHECKS", "DEV", "STAGING", "PROD"]
    assert "reviews" not in plain[0].to_dict()

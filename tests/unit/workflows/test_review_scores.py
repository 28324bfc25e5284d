"""The score line a reviewer writes in a design review (assessment/rubric.py, docs/design-review-rubric.md):
read from any text around it, strict about the count, each score's range and the total."""

from __future__ import annotations

import re

import pytest

from helpers.paths import REPO
from gitops_lab.assessment.rubric import CRITERIA, EXAMPLE, HIGHEST, LOWEST, MAXIMUM, PASS_TOTAL, parse_scores

RUBRIC = REPO / "docs" / "design-review-rubric.md"


def test_a_good_line_is_read_from_the_text_around_it():
    body = "Clear document, see my line comments.\n\n**Scores:** 2, 2, 1, 2 ,2,1, 2 ( 12 / 14 )\n\nThanks!"
    score = parse_scores(body)
    assert (score.status, score.scores, score.total, score.maximum) == ("ok", [2, 2, 1, 2, 2, 1, 2], 12, 14)
    assert (score.line, score.problems, score.problem) == (3, [], "")
    assert score.meets_pass_mark
    assert score.describe() == "scores 2,2,1,2,2,1,2 (12/14), meets the pass mark"
    assert parse_scores("- `Scores: 2,2,1,2,2,1,2 (12/14)`").scores == [2, 2, 1, 2, 2, 1, 2]  # a list item, code
    assert parse_scores("> scores: 0,0,0,0,0,0,0 (0/14)").total == 0  # quoted, lower case


@pytest.mark.parametrize(
    "line, problem",
    [
        (
            "Scores: 2,2,1,2,2,1 (10/14)",
            "6 scores where the rubric has 7 criteria (one score each, in the rubric's order)",
        ),
        ("Scores: 2,2,1,2,2,1,2,2 (14/14)", "8 scores where the rubric has 7 criteria"),
        ("Scores: (0/14)", "0 scores where the rubric has 7 criteria"),
    ],
)
def test_a_wrong_count_is_malformed(line, problem):
    score = parse_scores(f"Looks good.\n{line}")
    assert score.status == "malformed" and score.scores is None and score.line == 2
    assert problem in score.problem
    assert not score.meets_pass_mark
    assert score.describe().startswith("malformed score line (line 2 of the review): ")


@pytest.mark.parametrize(
    "line, problem",
    [
        ("Scores: 2,2,3,2,2,1,2 (14/14)", "criterion 3 (Triggers) scored 3, outside 0 to 2"),
        ("Scores: -1,2,2,2,2,2,2 (11/14)", "criterion 1 (ML vs software pipelines) scored -1, outside 0 to 2"),
        ("Scores: 2,2,1,2,2,1,two (10/14)", "score 7 'two' is not a number"),
    ],
)
def test_a_score_out_of_range_is_malformed(line, problem):
    score = parse_scores(line)
    assert score.status == "malformed" and problem in score.problems


@pytest.mark.parametrize(
    "line, problem",
    [
        ("Scores: 2,2,1,2,2,1,2 (13/14)", "the total says 13 where the scores add up to 12"),
        ("Scores: 2,2,1,2,2,1,2 (12/15)", "the total is out of '15' where the rubric's maximum is 14"),
        ("Scores: 2,2,1,2,2,1,2 (?/14)", "the total '?' is not a number"),
    ],
)
def test_a_wrong_total_is_malformed(line, problem):
    score = parse_scores(line)
    assert (score.status, score.problems) == ("malformed", [problem])


def test_a_line_meant_as_the_score_line_in_another_form_is_malformed_not_missing():
    for line in ("Scores 2,2,1,2,2,1,2: 12 of 14", "Score: 12/14", "Scores: 2,2,1,2,2,1,2 = 12"):
        score = parse_scores(f"ok\n{line}\n")
        assert score.status == "malformed", line
        assert score.problem == f"not in the form `{EXAMPLE}`: {line!r}"
    twice = parse_scores("Scores: 2,2,1,2,2,1,2 (12/14)\nlater I changed my mind\nScores: 1,1,1,1,1,1,1 (7/14)")
    assert (twice.status, twice.problems) == ("malformed", ["2 score lines (lines 1, 3); write exactly one"])


def test_no_score_line_is_missing():
    for body in ("", "LGTM", "Scores are in my line comments.", "2,2,1,2,2,1,2 (12/14)"):
        score = parse_scores(body)
        assert (score.status, score.scores, score.line) == ("missing", None, None), body
        assert score.problem == f"no score line (write one like `{EXAMPLE}`)"
        assert not score.meets_pass_mark


def test_the_pass_mark_is_the_rubrics():
    assert parse_scores("Scores: 2,2,1,1,1,1,2 (10/14)").meets_pass_mark  # 10, no 0
    under = parse_scores("Scores: 1,1,1,2,2,1,1 (9/14)")
    assert under.status == "ok" and not under.meets_pass_mark
    assert under.describe() == (
        "scores 1,1,1,2,2,1,1 (9/14), below the pass mark (10 or more of 14 with no 0): 9/14 is under 10"
    )
    a_zero = parse_scores("Scores: 2,2,0,2,2,2,2 (12/14)")
    assert not a_zero.meets_pass_mark
    assert a_zero.below_pass_mark().endswith(": criterion 3 (Triggers) scored 0")


def test_the_rubric_document_says_what_the_parser_reads():
    """The criteria (names and order), the range, the maximum and the pass mark are the rubric's; its examples
    parse as it says."""
    text = RUBRIC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| \*\*(.+?)\*\* \|", text, re.MULTILINE)
    assert rows == [(str(i), name) for i, name in enumerate(CRITERIA, 1)]
    assert f"Score each criterion {LOWEST} (missing or wrong), 1 (present but thin) or {HIGHEST} (clear" in text
    assert f"Approve at {PASS_TOTAL} or more of {MAXIMUM} with no {LOWEST};" in " ".join(text.split())
    examples = re.findall(r"^    (Scores: .*)$", text, re.MULTILINE)
    assert examples and all(parse_scores(line).status == "ok" for line in examples)
    assert f"    {EXAMPLE}\n" in text

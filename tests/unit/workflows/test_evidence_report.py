"""The evidence for instructors: `gitops-lab lab report` (one learner, a laptop) and `class report`.

A learner's repository is made by the tool and by what a learner does: the
design document committed and pushed with plain git, releases run by
`gitops-lab release`'s own workflow against real model-server processes
(helpers/local_engine.py), so the promotions and rollbacks and their evidence
trailers are the real ones. The report must name each, its JUnit must parse
with the right pass/fail per assessment, and a learner with nothing yet must
fail with "missing". Files are written only into --out.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from helpers.designdoc import push_design
from helpers.gitutil import git
from helpers.localengine import LocalEngine, learner_sets_dev
from helpers.renderer import needs_kustomize

from gitops_lab.assessment.design_doc import DOC_PATH
from gitops_lab.errors import VerificationFailed
from gitops_lab.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.release import run_release


def release(wc: Path, engine: LocalEngine):
    return run_release(Reporter(), wc, engine.deployment(), Deadline(300))


def demo(wc: Path, tmp: Path) -> tuple[str, str]:
    """A release that promotes v2 to staging, then v4 in dev, which fails verification and is reverted.
    Returns (the staging promotion, the rollback) as pushed."""
    engine = LocalEngine(wc, tmp)
    try:
        learner_sets_dev(wc, "v1")
        learner_sets_dev(wc, "v2")
        first = release(wc, engine)
        promotion = first.stages[1].commit
        learner_sets_dev(wc, "v4")
        with pytest.raises(VerificationFailed):
            release(wc, engine)
    finally:
        engine.stop()
    return promotion or "", git(wc, "rev-parse", "origin/main")


def junit_cases(path: Path) -> dict[tuple[str, str], str]:
    """(assessment, learner) -> passed, failed or skipped, from the JUnit file."""
    cases = {}
    for suite in ET.parse(path).getroot():
        for case in suite:
            status = "failed" if case.find("failure") is not None else "passed"
            status = "skipped" if case.find("skipped") is not None else status
            cases[(case.get("classname", "").removeprefix("assessment."), case.get("name", ""))] = status
    return cases


# --------------------------------------------------------------------------- #
# lab report
# --------------------------------------------------------------------------- #
@needs_kustomize  # the release's gates render the overlays
def test_a_learner_with_a_passing_design_and_a_rolled_back_release_has_both_named(lab, cli, tmp_path, monkeypatch):
    wc, _ = lab
    git(wc, "config", "user.name", "Lee Learner")
    design = push_design(wc)
    promotion, rollback = demo(wc, tmp_path)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = cli("lab", "report", "--repo", str(wc), "--out", str(tmp_path / "evidence"))
    assert result.exit_code == 0, result.output
    assert list(elsewhere.iterdir()) == []  # nothing written but into --out
    assert sorted(p.name for p in (tmp_path / "evidence").iterdir()) == ["evidence-junit.xml", "evidence.md"]
    assert junit_cases(tmp_path / "evidence" / "evidence-junit.xml") == {
        ("design-document", "Lee Learner"): "passed",
        ("peer-review", "Lee Learner"): "skipped",
        ("automated-release", "Lee Learner"): "passed",
    }
    md = (tmp_path / "evidence" / "evidence.md").read_text()
    head = git(wc, "rev-parse", "origin/main")
    assert f"at `{head[:7]}`" in md and head != design  # assessed at the pushed head
    assert "`docs/pipeline-design.md` agrees with the repository: stages data-preparation, data-validation" in md
    assert "no forge: reviews not available" in md
    assert f"`{promotion[:7]}`" in md and " promote staging: v1 -> v2, pass" in md
    [rollback_line] = [line for line in md.splitlines() if line.startswith(f"- `{rollback[:7]}`")]
    assert " rollback dev: v4 -> v2, fail (verification failed: accuracy (live accuracy 0.5172" in rollback_line
    evidence = md.split(rollback_line, 1)[1]
    assert "  - verification of dev:" in evidence and "    - Verify-Accuracy: fail (live accuracy 0.5172" in evidence

    data = json.loads(cli("lab", "report", "--repo", str(wc), "--output", "json").stdout)
    [learner] = data["learners"]
    assert data["written"] == []
    steps = [(s["action"], s["environment"], s["previous"], s["version"], s["verdict"]) for s in learner["releases"]]
    assert steps == [("promote", "staging", "v1", "v2", "pass"), ("rollback", "dev", "v4", "v2", "fail")]
    assert learner["releases"][1]["commit"] == rollback and learner["design"]["passed"] is True


def test_a_learner_with_nothing_yet_fails_each_assessment_as_missing(lab, cli, tmp_path):
    wc, _ = lab
    push_design(wc, push=False)  # written and committed, never pushed: not evidence yet
    result = cli("lab", "report", "--repo", str(wc), "--learner", "nobody", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert junit_cases(tmp_path / "out" / "evidence-junit.xml") == {
        ("design-document", "nobody"): "failed",
        ("peer-review", "nobody"): "skipped",
        ("automated-release", "nobody"): "failed",
    }
    root = ET.parse(tmp_path / "out" / "evidence-junit.xml").getroot()
    failures = {f.get("message") for f in root.iter("failure")}
    assert any(
        re.fullmatch(r"\d+ problems, the first: differences: still holds the template's placeholder TODO .*", m)
        for m in failures
    )
    assert (
        "missing: no automated promotion and no automated rollback with verification evidence (`gitops-lab release`)"
        in failures
    )
    md = (tmp_path / "out" / "evidence.md").read_text()
    assert "| nobody | **FAILED** | skipped | **FAILED** |" in md
    assert "None: `gitops-lab release` has promoted or rolled back nothing in this repository." in md

    git(wc, "rm", "-q", DOC_PATH)
    git(wc, "commit", "-qm", "Remove the design document")
    git(wc, "push", "-q", "origin", "HEAD:main")
    text = cli("lab", "report", "--repo", str(wc), "--learner", "nobody").stdout
    assert "nobody design-document: missing: there is no design document docs/pipeline-design.md in" in text


def test_report_options_are_checked_in_one_line(lab, cli, tmp_path):
    wc, _ = lab
    result = cli("lab", "report", "--repo", str(wc), "--forge-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --forge-url and --forge-credentials go together; pass both, or neither"
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli("lab", "report", "--repo", str(wc), "--out", str(blocker / "sub"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot write the report into {blocker}/sub: Not a directory; pass --out a folder you can write to"
    )


# --------------------------------------------------------------------------- #
# class report: class records on disk, each learner's repository on a local bare remote
# --------------------------------------------------------------------------- #
@pytest.fixture
def a_class(tmp_path, monkeypatch):
    """A class of alice and bob on a folder Git server: the instructor's view of each learner
    (state and clone) as `class create` leaves it, and each learner's own clone."""
    from gitops_lab.adapters.repo.seed import init_working_copy
    from gitops_lab.classroom.record import ClassRecord, GitServerRecord, learner_env_name
    from gitops_lab.state import EnvironmentState, environment_dir

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "git"
    learners = ["alice", "bob"]
    ClassRecord("gitops-lab", "flux", None, None, GitServerRecord("folder", str(root), "http://h"), learners).save()
    clones = {}
    for learner in learners:
        remote = root / f"{learner}.git"
        subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(remote)], check=True)
        name = learner_env_name("gitops-lab", learner)
        seeded = init_working_copy(environment_dir(name) / "repo", str(remote))
        EnvironmentState(name=name, repo_path=str(seeded.path), remote_url=str(remote), tenant=learner).save()
        clones[learner] = tmp_path / f"{learner}-laptop"
        git(tmp_path, "clone", "-q", str(remote), str(clones[learner]))
        git(clones[learner], "config", "user.name", learner)
    return clones


@needs_kustomize
def test_class_report_has_each_learners_evidence_from_what_they_pushed(a_class, cli, tmp_path):
    alice = a_class["alice"]
    push_design(alice)
    engine = LocalEngine(alice, tmp_path)
    try:
        learner_sets_dev(alice, "v4")
        with pytest.raises(VerificationFailed):
            release(alice, engine)
    finally:
        engine.stop()
    rollback = git(alice, "rev-parse", "origin/main")

    result = cli("class", "report", "--out", str(tmp_path / "evidence"))
    assert result.exit_code == 0, result.output
    assert junit_cases(tmp_path / "evidence" / "evidence-junit.xml") == {
        ("design-document", "alice"): "passed",
        ("design-document", "bob"): "failed",
        ("peer-review", "alice"): "skipped",
        ("peer-review", "bob"): "skipped",
        # alice's release rolled back in dev, but promoted nothing: half the demo
        ("automated-release", "alice"): "failed",
        ("automated-release", "bob"): "failed",
    }
    assert "alice automated-release: missing: no automated promotion (`gitops-lab release`)" in result.stdout
    md = (tmp_path / "evidence" / "evidence.md").read_text()
    assert md.index("## alice") < md.index("## bob")
    assert f"`{rollback[:7]}`" in md.split("## bob")[0] and "rollback dev: v4 -> v2, fail" in md

    only_bob = json.loads(cli("class", "report", "--learner", "bob", "--output", "json").stdout)
    assert [e["learner"] for e in only_bob["learners"]] == ["bob"]
    unknown = cli("class", "report", "--learner", "carol")
    assert unknown.exit_code == 2 and "there is no learner 'carol' in the class 'gitops-lab'" in unknown.stderr


# --------------------------------------------------------------------------- #
# lab report with reviews: each review's score line (assessment/rubric.py) and the verdict by the pass mark
# --------------------------------------------------------------------------- #
class ReviewsForge:
    """The forge as the report reads it (ForgeRepository): design pull requests with the reviews given."""

    where = "http://forge.test/lee/lab"

    def __init__(self, *pulls):
        self.pulls = pulls  # newest first, as Gitea lists them

    def commit_url(self, sha):
        return f"{self.where}/commit/{sha}"

    def design_pull_requests(self, path):
        from gitops_lab.adapters.forge.gitea import PullRequest, Review

        return [
            PullRequest(
                number,
                "Pipeline design document",
                "open",
                False,
                "design",
                "0" * 40,
                "main",
                "lee",
                reviews=tuple(
                    Review(user, state, "0" * 40, True, body, f"{self.where}/pulls/{number}#{user}")
                    for user, state, body in reviews
                ),
                url=f"{self.where}/pulls/{number}",
            )
            for number, reviews in self.pulls
        ]


def report_with(cli, monkeypatch, wc, out, forge):
    """`lab report` reading ``forge``: (stdout, the learner's JSON, evidence.md, the peer-review testcase)."""
    import gitops_lab.assessment.evidence as evidence

    monkeypatch.setattr(evidence, "open_forge", lambda url, credentials, repository=None: forge)
    args = ["--repo", str(wc), "--learner", "lee", "--forge-url", "http://forge.test", "--forge-credentials", "f"]
    text = cli("lab", "report", *args, "--out", str(out))
    assert text.exit_code == 0, text.output
    [data] = json.loads(cli("lab", "report", *args, "--output", "json").stdout)["learners"]
    [case] = [
        c
        for c in ET.parse(out / "evidence-junit.xml").getroot().iter("testcase")
        if "peer-review" in c.get("classname", "")
    ]
    return text.stdout, data, (out / "evidence.md").read_text(), case


GOOD = "Thorough; see my line comments.\n\nScores: 2,2,1,2,2,1,2 (12/14)\n"


def test_each_reviews_scores_are_reported_and_a_scored_approval_passes(lab, cli, tmp_path, monkeypatch):
    wc, _ = lab
    forge = ReviewsForge(
        (
            2,
            [
                ("sam", "COMMENT", "reading it"),
                ("tom", "REQUEST_CHANGES", "No triggers.\nScores: 2,2,0,2,1,1 (8/14)"),
                ("rhea", "APPROVED", GOOD),
            ],
        ),
        (1, [("uma", "APPROVED", "**Scores:** 1,1,1,1,1,1,1 (7/14)")]),
    )
    stdout, data, md, case = report_with(cli, monkeypatch, wc, tmp_path / "out", forge)

    assert data["verdicts"]["peer-review"] == {"status": "passed", "summary": "#2 approved by rhea at 12/14"}
    reviews = {r["user"]: r for pr in data["pull_requests"] for r in pr["reviews"]}
    assert {k: reviews["rhea"][k] for k in ("user", "state", "official", "body")} == {
        "user": "rhea",
        "state": "APPROVED",
        "official": True,
        "body": GOOD,
    }  # the fields read before, as they were
    assert reviews["rhea"]["score"] == {
        "status": "ok",
        "scores": [2, 2, 1, 2, 2, 1, 2],
        "total": 12,
        "maximum": 14,
        "line": 3,
        "text": "Scores: 2,2,1,2,2,1,2 (12/14)",
        "problems": [],
        "problem": "",
        "meets_pass_mark": True,
    }
    assert (reviews["tom"]["score"]["status"], reviews["tom"]["score"]["problems"]) == (
        "malformed",
        ["6 scores where the rubric has 7 criteria (one score each, in the rubric's order)"],
    )
    assert (reviews["sam"]["score"]["status"], reviews["uma"]["score"]["meets_pass_mark"]) == ("missing", False)

    lines = {
        "rhea": "#2 rhea APPROVED: scores 2,2,1,2,2,1,2 (12/14), meets the pass mark",
        "tom": "#2 tom REQUEST_CHANGES: malformed score line (line 2 of the review): 6 scores where the rubric has 7 criteria (one score each, in the rubric's order)",
        "sam": "#2 sam COMMENT: no score line (write one like `Scores: 2,2,1,2,2,1,2 (12/14)`)",
        "uma": "#1 uma APPROVED: scores 1,1,1,1,1,1,1 (7/14), below the pass mark (10 or more of 14 with no 0): 7/14 is under 10",
    }
    for line in lines.values():
        assert f"lee review {line}\n" in stdout
    assert "lee peer-review: #2 approved by rhea at 12/14\n" in stdout
    assert case.find("failure") is None
    assert case.findtext("system-out") == "\n".join(
        ["#2 approved by rhea at 12/14", *(lines[u] for u in ("sam", "tom", "rhea", "uma"))]
    )
    rhea_at = md.index(
        f"  - [rhea]({forge.where}/pulls/2#rhea) APPROVED: Thorough; see my line comments. Scores: 2,2,1,2,2,1,2 (12/14)\n"
    )
    assert md[rhea_at:].split("\n")[1] == "    - scores 2,2,1,2,2,1,2 (12/14), meets the pass mark"
    assert "    - malformed score line (line 2 of the review): 6 scores where the rubric has 7 criteria" in md
    assert "    - scores 1,1,1,1,1,1,1 (7/14), below the pass mark (10 or more of 14 with no 0): 7/14 is under 10" in md


@pytest.mark.parametrize(
    "body, why",
    [
        ("LGTM", "no score line (write one like `Scores: 2,2,1,2,2,1,2 (12/14)`)"),
        (
            "Scores: 2,2,1,2,2,1,2 (13/14)",
            "malformed score line (line 1 of the review): the total says 13 where the scores add up to 12",
        ),
        (
            "Scores: 2,2,3,2,2,1,2 (14/14)",
            "malformed score line (line 1 of the review): criterion 3 (Triggers) scored 3, outside 0 to 2",
        ),
        (
            "Scores: 2,2,1,2,2,1 (10/14)",
            "malformed score line (line 1 of the review): 6 scores where the rubric has 7 criteria",
        ),
        (
            "Scores: 2,2,0,2,2,2,2 (12/14)",
            "scores 2,2,0,2,2,2,2 (12/14), below the pass mark (10 or more of 14 with no 0): criterion 3 (Triggers) scored 0",
        ),
    ],
)
def test_an_approval_without_scores_that_meet_the_pass_mark_fails_the_peer_review_saying_why(
    lab, cli, tmp_path, monkeypatch, body, why
):
    wc, _ = lab
    forge = ReviewsForge((3, [("rhea", "APPROVED", body)]))
    stdout, data, md, case = report_with(cli, monkeypatch, wc, tmp_path / "out", forge)
    verdict = data["verdicts"]["peer-review"]
    assert verdict["status"] == "failed"
    assert verdict["summary"].startswith(
        f"no approval meets the rubric (10 or more of 14 with no 0): rhea on #3: {why}"
    )
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == verdict["summary"][:500]
    assert (failure.text or "").splitlines()[1].startswith(f"#3 rhea APPROVED: {why}")
    assert "| lee | **FAILED** | **FAILED** | **FAILED** |" in md

    # the reviewer fixes it with a new approval: their latest one is read
    forge.pulls = ((3, [("rhea", "APPROVED", body), ("rhea", "APPROVED", GOOD)]),)
    _, data, _, case = report_with(cli, monkeypatch, wc, tmp_path / "again", forge)
    assert data["verdicts"]["peer-review"] == {"status": "passed", "summary": "#3 approved by rhea at 12/14"}
    assert case.find("failure") is None

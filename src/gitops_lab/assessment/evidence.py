"""The evidence of one learner for the module's two assessments, read from their repository (and forge).

1. The peer-reviewed pipeline design document: the design check (design_doc.py)
   run at the commit assessed, and, where a forge is configured, the pull
   requests that changed the document, with their reviews and verdicts. Each
   review's score line (rubric.py) is parsed: an approval passes the peer
   review only when its scores meet the rubric's pass mark.
2. The demo of automated promotion with rollback: every promotion and rollback
   `gitops-lab release` made (the commits with a ``Release-Trigger`` trailer),
   with the environment, the versions from and to (read from the overlay's
   diff, not from trailers), the verdict and the verification evidence its
   trailers carry.

Everything is read from Git at one commit (the pushed head) and from the
forge's API; nothing is written. Each assessment ends as passed, failed (what
is missing, in words) or skipped (no forge: reviews cannot be known).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.adapters.forge.gitea import GiteaAPI, PullRequest
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.history import history, log_entries
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.adapters.repo.pushed import fetch_pushed, pushed_ref
from gitops_lab.assessment.design_doc import DOC_PATH, check_design
from gitops_lab.assessment.repo_files import CommitFiles
from gitops_lab.assessment.rubric import PASS_MARK, ScoreLine, parse_scores
from gitops_lab.adapters.forge.seed import read_accounts
from gitops_lab.errors import GitError, GitOpsLabError, UsageError

DESIGN = "design-document"
REVIEW = "peer-review"
RELEASE = "automated-release"
ASSESSMENTS = (DESIGN, REVIEW, RELEASE)
NO_FORGE = "no forge: reviews not available"
RELEASE_ACTIONS = ("promote", "rollback")


@dataclass(frozen=True)
class ForgeRepository:
    """The learner's repository on the forge, read as an account that can see it."""

    api: GiteaAPI
    owner: str
    name: str

    @property
    def where(self) -> str:
        return f"{self.api.base_url}/{self.owner}/{self.name}"

    def commit_url(self, sha: str) -> str:
        return f"{self.where}/commit/{sha}"

    def design_pull_requests(self, path: str) -> list[PullRequest]:
        """The pull requests (newest first) that change ``path``, with their reviews."""
        found = []
        for pr in self.api.pull_requests(self.owner, self.name, with_reviews=False):
            if path in self.api.pull_request_files(self.owner, self.name, pr.number):
                found.append(self.api.pull_request(self.owner, self.name, pr.number))
        return found


def open_forge(url: str, credentials: Path, repository: str | None = None) -> ForgeRepository:
    """The learner's repository on the forge at ``url``, read as the admin of the accounts file (0600) seeding
    kept; ``repository`` (OWNER/NAME) defaults to the learner's ``lab``."""
    accounts = read_accounts(credentials)
    owner, _, name = (repository or f"{accounts.learner.username}/lab").partition("/")
    if not owner or not name or "/" in name:
        raise UsageError(f"--forge-repo {repository!r} is not OWNER/NAME", fix="pass e.g. --forge-repo learner/lab")
    return ForgeRepository(GiteaAPI(url, accounts.admin), owner, name)


@dataclass
class Verdict:
    assessment: str  # one of ASSESSMENTS
    status: str  # passed, failed, skipped
    summary: str


@dataclass
class ReleaseStep:
    """One promotion or rollback that `gitops-lab release` made."""

    commit: str
    action: str  # promote, rollback
    environment: str
    previous: str | None
    version: str
    verdict: str  # pass: every check its trailers carry passed; fail: one failed (a rollback's reason)
    reason: str  # a rollback's Rollback-Reason, "" for a promotion
    evidence: list[str]  # the verification trailers, "Verify-Accuracy: fail (live accuracy 0.68 ...)"
    verified_in: str  # whose verification the evidence is: a promotion carries its source's, a rollback its own
    date: str
    url: str = ""


@dataclass
class ReviewedPullRequest:
    number: int
    title: str
    url: str
    state: str
    merged: bool
    author: str
    reviews: list[dict[str, Any]]  # user, state, official, body, url, score (ScoreLine.to_dict())
    requested_reviewers: list[str] = field(default_factory=list)  # asked to review, not reviewed since

    @property
    def approved_by(self) -> list[str]:
        return list(dict.fromkeys(r["user"] for r in self.reviews if r["state"] == "APPROVED"))

    def approvals(self) -> dict[str, ScoreLine]:
        """Each approver's score line, read from their latest approving review (reviews come oldest first)."""
        return {r["user"]: parse_scores(r["body"]) for r in self.reviews if r["state"] == "APPROVED"}


@dataclass
class LearnerEvidence:
    learner: str
    repository: str  # where the repository is pushed (its remote URL, or its folder)
    commit: str  # the commit assessed (the pushed head)
    design: dict[str, Any] | None  # DesignReport.to_dict(); None when it could not be checked
    design_problem: str  # why it could not be checked ("" when it was)
    releases: list[ReleaseStep]
    pull_requests: list[ReviewedPullRequest] | None  # None: no forge
    verdicts: list[Verdict] = field(default_factory=list)
    commit_url: str = ""
    problem: str = ""  # reading the repository failed (e.g. it could not be fetched): shown as last read
    # the classmates assigned to review (class reviews assign); None: no assignment, anyone's approval counts
    assigned_reviewers: list[str] | None = None

    def assigned_reviews(self) -> dict[str, str]:
        """Each assigned reviewer's latest review of the design document (see ``latest_reviews``)."""
        return latest_reviews(self.pull_requests or [], self.assigned_reviewers or [])

    def verdict(self, assessment: str) -> Verdict:
        return next(v for v in self.verdicts if v.assessment == assessment)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdicts"] = {v.assessment: {"status": v.status, "summary": v.summary} for v in self.verdicts}
        data["assigned_reviews"] = self.assigned_reviews() if self.assigned_reviewers is not None else None
        return data


def latest_reviews(pull_requests: list[ReviewedPullRequest], reviewers: list[str]) -> dict[str, str]:
    """Each reviewer's latest review on ``pull_requests`` (the design pull requests, newest first): APPROVED,
    REQUEST_CHANGES, COMMENT, else "requested" (asked on the forge) or "not requested"."""
    out = {}
    for reviewer in reviewers:
        # pull requests come newest first, each one's reviews oldest first
        mine = next(
            (
                [r for r in pr.reviews if r["user"] == reviewer]
                for pr in pull_requests
                if any(r["user"] == reviewer for r in pr.reviews)
            ),
            [],
        )
        if mine:
            out[reviewer] = mine[-1]["state"]
        else:
            asked = any(reviewer in pr.requested_reviewers for pr in pull_requests)
            out[reviewer] = "requested" if asked else "not requested"
    return out


def design_evidence(git: Git, ref: str, path: str = DOC_PATH) -> tuple[dict[str, Any] | None, str]:
    """The design check at ``ref``: (its report, "") or (None, why there is none to check)."""
    try:
        return check_design(CommitFiles(git, ref), path).to_dict(), ""
    except GitOpsLabError as exc:  # no document, or a gates.yaml the check cannot read
        return None, exc.message


def release_steps(repo: Path, ref: str, forge: ForgeRepository | None = None) -> list[ReleaseStep]:
    """Every promotion and rollback `gitops-lab release` made up to ``ref``, oldest first."""
    git = Git(repo)
    order = {entry.sha: i for i, entry in enumerate(log_entries(git, ref))}
    steps = []
    for env in ENVIRONMENTS:
        for entry in history(repo, env, ref):
            if entry.action not in RELEASE_ACTIONS or t.RELEASE_TRIGGER not in entry.trailers or not entry.changed:
                continue
            evidence = [f"{k}: {v}" for k, v in entry.trailers.items() if k.startswith(f"{t.VERIFY_PREFIX}-")]
            failed = any(line.split(": ", 1)[1].startswith("fail") for line in evidence)
            reason = entry.trailers.get(t.ROLLBACK_REASON, "")
            steps.append(
                ReleaseStep(
                    commit=entry.commit,
                    action=entry.action,
                    environment=env,
                    previous=entry.previous,
                    version=entry.version,
                    verdict="fail" if failed or reason else "pass",
                    reason=reason,
                    evidence=evidence,
                    verified_in=(entry.promoted_from or env) if entry.action == "promote" else env,
                    date=entry.date,
                    url=forge.commit_url(entry.commit) if forge else "",
                )
            )
    return sorted(steps, key=lambda s: -order.get(s.commit, 0))


def reviewed_pull_requests(forge: ForgeRepository, path: str = DOC_PATH) -> list[ReviewedPullRequest]:
    return [
        ReviewedPullRequest(
            number=pr.number,
            title=pr.title,
            url=pr.url,
            state=pr.state,
            merged=pr.merged,
            author=pr.author,
            reviews=[
                {
                    "user": r.user,
                    "state": r.state,
                    "official": r.official,
                    "body": r.body,
                    "url": r.url,
                    "score": parse_scores(r.body).to_dict(),
                }
                for r in pr.reviews
            ],
            requested_reviewers=list(pr.requested_reviewers),
        )
        for pr in forge.design_pull_requests(path)
    ]


def learner_evidence(
    learner: str,
    repo: Path,
    ref: str,
    forge: ForgeRepository | None = None,
    problem: str = "",
    assigned_reviewers: list[str] | None = None,
) -> LearnerEvidence:
    """Everything the report says of one learner: their repository at ``ref`` and, with ``forge``, its reviews;
    with ``assigned_reviewers``, only their approval passes the peer review."""
    git = Git(repo)
    commit = git.out("rev-parse", "--verify", f"{ref}^{{commit}}")
    design, design_problem = design_evidence(git, commit)
    evidence = LearnerEvidence(
        learner=learner,
        repository=git.remote_url() or str(repo),
        commit=commit,
        design=design,
        design_problem=design_problem,
        releases=release_steps(repo, commit, forge),
        pull_requests=reviewed_pull_requests(forge) if forge else None,
        commit_url=forge.commit_url(commit) if forge else "",
        problem=problem,
        assigned_reviewers=assigned_reviewers,
    )
    evidence.verdicts = [_design_verdict(evidence), _review_verdict(evidence), _release_verdict(evidence)]
    return evidence


def _design_verdict(e: LearnerEvidence) -> Verdict:
    if e.design is None:
        return Verdict(DESIGN, "failed", f"missing: {e.design_problem}")
    if not e.design["passed"]:
        count = len(e.design["problems"])
        first = e.design["problems"][0]
        return Verdict(
            DESIGN,
            "failed",
            f"{count} problem{'s' if count != 1 else ''}, the first: {first['section']}: {first['message']}",
        )
    return Verdict(DESIGN, "passed", f"agrees with the repository at {e.commit[:7]}")


def review_lines(e: LearnerEvidence) -> list[str]:
    """One line per review of the design pull requests: "#3 rhea APPROVED: scores 2,2,1,2,2,1,2 (12/14), meets
    the pass mark", or what is wrong with its score line."""
    return [
        f"#{pr.number} {r['user']} {r['state']}: {parse_scores(r['body']).describe()}"
        for pr in e.pull_requests or []
        for r in pr.reviews
    ]


def _scored_approvals(
    pull_requests: list[ReviewedPullRequest], reviewers: list[str] | None
) -> tuple[tuple[int, list[str]] | None, list[str]]:
    """The newest pull request's approvals (by ``reviewers``, else anyone's) whose scores meet the rubric's
    pass mark, as (number, ["rhea at 12/14"]), or None; and every approval that does not, saying why."""
    rejected = []
    for pr in pull_requests:
        passing = []
        for user, score in pr.approvals().items():
            if reviewers is not None and user not in reviewers:
                continue
            if score.meets_pass_mark:
                passing.append(f"{user} at {score.total}/{score.maximum}")
            else:
                rejected.append(f"{user} on #{pr.number}: {score.describe()}")
        if passing:
            return (pr.number, passing), rejected
    return None, rejected


def _review_verdict(e: LearnerEvidence) -> Verdict:
    if e.pull_requests is None:
        return Verdict(REVIEW, "skipped", NO_FORGE)
    if not e.pull_requests:
        return Verdict(REVIEW, "failed", f"missing: no pull request changes {DOC_PATH}")
    if e.assigned_reviewers is not None:
        return _assigned_review_verdict(e)
    passing, rejected = _scored_approvals(e.pull_requests, None)
    if passing:
        return Verdict(REVIEW, "passed", f"#{passing[0]} approved by {', '.join(passing[1])}")
    if rejected:
        return Verdict(REVIEW, "failed", f"no approval meets the rubric ({PASS_MARK}): {'; '.join(rejected)}")
    reviewed = sum(len(pr.reviews) for pr in e.pull_requests)
    return Verdict(
        REVIEW,
        "failed",
        f"no approving review yet ({len(e.pull_requests)} pull request(s), {reviewed} review(s))",
    )


def _assigned_review_verdict(e: LearnerEvidence) -> Verdict:
    """Passed when a classmate assigned to review approved with scores that meet the rubric's pass mark: an
    approval by anyone else is not the peer review."""
    assigned = e.assigned_reviewers or []
    passing, rejected = _scored_approvals(e.pull_requests or [], assigned)
    if passing:
        return Verdict(REVIEW, "passed", f"#{passing[0]} approved by {', '.join(passing[1])} (assigned)")
    states = ", ".join(f"{u} {s}" for u, s in e.assigned_reviews().items())
    others = sorted({u for pr in e.pull_requests or [] for u in pr.approved_by} - set(assigned))
    also = (
        f"; approved by {', '.join(others)}, who {'is' if len(others) == 1 else 'are'} not assigned" if others else ""
    )
    if rejected:
        return Verdict(
            REVIEW,
            "failed",
            f"no approval by an assigned reviewer meets the rubric ({PASS_MARK}): {'; '.join(rejected)}{also}",
        )
    return Verdict(REVIEW, "failed", f"no approval by an assigned reviewer yet ({states}){also}")


def _release_verdict(e: LearnerEvidence) -> Verdict:
    promotions = [s for s in e.releases if s.action == "promote"]
    rollbacks = [s for s in e.releases if s.action == "rollback" and s.evidence]
    missing = []
    if not promotions:
        missing.append("no automated promotion")
    if not rollbacks:
        missing.append("no automated rollback with verification evidence")
    if missing:
        return Verdict(RELEASE, "failed", f"missing: {' and '.join(missing)} (`gitops-lab release`)")
    last = rollbacks[-1]
    return Verdict(
        RELEASE,
        "passed",
        f"{len(promotions)} promotion(s), {len(rollbacks)} rollback(s); the last: {last.environment} "
        f"{last.previous} -> {last.version} ({last.reason or 'verification failed'})",
    )


def pushed_evidence(
    learner: str, repo: Path, forge: ForgeRepository | None = None, assigned_reviewers: list[str] | None = None
) -> LearnerEvidence:
    """``learner_evidence`` at what was pushed (fetched first); as last fetched, saying why, when the fetch fails."""
    git, problem = Git(repo), ""
    try:
        ref = fetch_pushed(git)
    except GitError as exc:
        ref = pushed_ref(git)
        problem = f"cannot fetch the repository, so this is as last fetched: {exc.message}"
    return learner_evidence(learner, repo, ref, forge, problem, assigned_reviewers)

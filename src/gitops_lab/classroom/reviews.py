"""`class reviews assign`: every learner's design document reviewed by classmates, on the forge (Gitea).

Who reviews whom is a plan made once from the class's names and a seed: the
names are shuffled by the seed and each learner is reviewed by the N learners
after them in that ring. So nobody reviews themselves, everybody reviews exactly
N classmates, and the same names and seed give the same pairs. The plan is kept
in the class's state folder (reviews.json) and applied on the forge to each
learner whose design pull request is open: the reviewers get read access to the
author's lab repository (``<learner>/lab``, or ``<org>/<learner>`` in a class on its own Gitea) and are requested as reviewers of that pull request.
A learner without one is "not ready" and is applied on a later run. The admin
grants the access; the author's own account asks for the reviews (Gitea lets a
pull request's poster choose its reviewers). Running it
again changes nothing that is already so.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.adapters.forge.gitea import GiteaAPI
from gitops_lab.adapters.forge.classforge import class_organisation
from gitops_lab.adapters.forge.seed import ForgeAccounts, read_accounts
from gitops_lab.assessment.design_doc import DOC_PATH
from gitops_lab.assessment.evidence import ForgeRepository, latest_reviews, reviewed_pull_requests
from gitops_lab.classroom.record import ClassRecord, class_dir
from gitops_lab.errors import UsageError
from gitops_lab.reporter import Reporter
from gitops_lab.state import write_private_json
from gitops_lab.textfiles import load_json_object

REVIEWS_FILE = "reviews.json"
LAB_REPOSITORY = "lab"  # each learner's repository on a forge seeded by hand: <learner>/lab


@dataclass(frozen=True)
class ClassForge:
    """The forge peer review runs on: its URL, its accounts, and where each learner's lab repository is.

    A class made with `class create --git-server gitea` keeps its learners' repositories in its organisation
    (``<org>/<learner>``); on a forge seeded by hand, each learner owns ``<learner>/lab``."""

    url: str
    accounts: ForgeAccounts
    organisation: str | None = None

    def lab_repository(self, learner: str) -> tuple[str, str]:
        """(owner, name) of ``learner``'s lab repository."""
        return (self.organisation, learner) if self.organisation else (learner, LAB_REPOSITORY)

    def admin(self) -> GiteaAPI:
        return GiteaAPI(self.url, self.accounts.admin)


def class_forge(record: ClassRecord | None) -> ClassForge | None:
    """The class's own forge, as `class create --git-server gitea` recorded it; None for a class without one."""
    if record is None or record.git.kind != "gitea" or not (record.git.forge_url and record.git.forge_credentials):
        return None
    return ClassForge(
        record.git.forge_url, read_accounts(Path(record.git.forge_credentials)), class_organisation(record.name)
    )


def review_ring(learners: list[str], per_learner: int, seed: int) -> dict[str, list[str]]:
    """Each learner's reviewers: a derangement, every learner reviewing exactly ``per_learner`` classmates,
    the same for the same names (in any order) and seed."""
    if len(set(learners)) != len(learners):
        raise UsageError("a learner is named twice", fix="give every learner their own name")
    if not 1 <= per_learner < len(learners):
        raise UsageError(
            f"{len(learners)} learners cannot each have {per_learner} reviewers among their classmates",
            fix=f"pass --per-learner between 1 and {max(len(learners) - 1, 1)} (and at least two learners)",
        )
    ring = sorted(learners)
    random.Random(seed).shuffle(ring)
    n = len(ring)
    return {
        ring[i]: [ring[(i + k) % n] for k in range(1, per_learner + 1)] for i in sorted(range(n), key=ring.__getitem__)
    }


@dataclass
class ReviewPlan:
    """Who reviews whom in a class, and on which pull request the reviews were requested."""

    seed: int
    per_learner: int
    learners: list[str]
    reviewers: dict[str, list[str]]  # author: their reviewers
    requested_on: dict[str, int] = field(default_factory=dict)  # author: their design pull request's number

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reviews_file(name: str) -> Path:
    return class_dir(name) / REVIEWS_FILE


def load_plan(name: str) -> ReviewPlan | None:
    """The class's review plan, or None when reviews were never assigned."""
    path = reviews_file(name)
    fix = f"restore it from a backup, or delete {path} and run `gitops-lab class reviews assign` again"
    try:
        data = load_json_object(path, "review plan", fix)
    except FileNotFoundError:
        return None
    try:
        plan = ReviewPlan(
            seed=int(data["seed"]),
            per_learner=int(data["per_learner"]),
            learners=[str(n) for n in data["learners"]],
            reviewers={str(a): [str(r) for r in rs] for a, rs in data["reviewers"].items()},
            requested_on={str(a): int(n) for a, n in (data.get("requested_on") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"the review plan {path} is damaged ({exc})", fix=fix) from exc
    return plan


def plan_for(name: str, learners: list[str], per_learner: int, seed: int) -> ReviewPlan:
    """The kept plan when it was made from these names and options; a new one when there is none."""
    kept = load_plan(name)
    if kept is None:
        return ReviewPlan(seed, per_learner, sorted(learners), review_ring(learners, per_learner, seed))
    if (kept.seed, kept.per_learner, kept.learners) != (seed, per_learner, sorted(learners)):
        raise UsageError(
            f"reviews were assigned with --seed {kept.seed} --per-learner {kept.per_learner} for "
            f"{', '.join(kept.learners)}; this run asks for another plan",
            fix=(
                f"pass the same --seed, --per-learner and learners; to assign anew, delete {reviews_file(name)} "
                "(the reviews already requested on the forge stay)"
            ),
        )
    return kept


@dataclass
class Assignment:
    """One author's reviews on the forge after `class reviews assign`."""

    learner: str
    status: str  # assigned, not ready
    reviewers: list[str]
    pull_request: int | None = None
    url: str = ""
    granted: list[str] = field(default_factory=list)  # given read access now
    requested: list[str] = field(default_factory=list)  # asked to review now
    reason: str = ""  # why not ready

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assign(
    name: str,
    forge: ClassForge,
    learners: list[str],
    per_learner: int,
    seed: int,
    reporter: Reporter,
) -> list[Assignment]:
    """Apply the class's review plan on ``forge`` as its admin; one assignment per learner."""
    accounts = forge.accounts
    unknown = [n for n in learners if accounts.class_learner(n) is None]
    if unknown:
        raise UsageError(
            f"the forge credentials file has no account for {', '.join(unknown)}",
            fix="add the class's learners to it (seed.load_or_create_accounts(..., learners=...)) and run again",
        )
    plan = plan_for(name, learners, per_learner, seed)
    api = forge.admin()
    done = []
    with reporter.step(f"Assigning reviewers to {len(learners)} design documents") as step:
        for author in sorted(learners):
            step.update(author)
            done.append(_apply(api, forge, plan, author))
            if done[-1].pull_request is not None:
                plan.requested_on[author] = done[-1].pull_request
                # kept after each author: a run stopped half-way has recorded what it requested
                write_private_json(reviews_file(name), plan.to_dict(), mode=0o644)
        step.done(
            f"{sum(a.status == 'assigned' for a in done)} assigned, {sum(a.status != 'assigned' for a in done)} not ready"
        )
    return done


def _apply(api: GiteaAPI, forge: ClassForge, plan: ReviewPlan, author: str) -> Assignment:
    accounts = forge.accounts
    reviewers = plan.reviewers[author]
    owner, name = forge.lab_repository(author)
    repository = api.repository(owner, name)
    if repository is None:
        return Assignment(author, "not ready", reviewers, reason=f"no repository {owner}/{name} on the forge")
    if repository.get("empty"):  # Gitea answers 404 to the pull requests of a repository with no commit
        return Assignment(author, "not ready", reviewers, reason=f"nothing pushed to {owner}/{name} yet")
    on_forge = ForgeRepository(api, owner, name)
    open_prs = [pr for pr in on_forge.design_pull_requests(DOC_PATH) if pr.state == "open"]
    if not open_prs:
        return Assignment(author, "not ready", reviewers, reason=f"no open pull request changes {DOC_PATH}")
    pr = open_prs[0]  # the newest
    granted = []
    for reviewer in reviewers:
        account = accounts.class_learner(reviewer)
        assert account is not None  # checked by assign()
        api.ensure_user(account)  # a classmate who has not pushed yet may have no account yet
        # in a class's own organisation every classmate reads every repository already (its classmates team)
        if not forge.organisation and api.ensure_can_read(owner, name, reviewer):
            granted.append(reviewer)
    # asked as the author: the pinned Gitea refuses (422 "Doer can't choose reviewer") a site admin who is
    # neither the pull request's poster nor a collaborator, and the credentials file holds the author's account
    author_account = accounts.class_learner(author)
    assert author_account is not None  # checked by assign()
    requested = api.as_user(author_account).request_reviewers(owner, name, pr.number, reviewers)
    return Assignment(author, "assigned", reviewers, pr.number, pr.url, granted, requested)


#: A review that gives a verdict. A COMMENT alone is not yet the review the rubric asks for.
VERDICT_REVIEWS = ("APPROVED", "REQUEST_CHANGES")
NOT_READY = "not ready"  # the author's design pull request was not there when reviews were assigned


@dataclass
class ReviewStanding:
    """One learner's peer review as `class status` shows it: received on their document, given to classmates'."""

    received: str  # "1/2 approved", "1/2 approved, 1 changes requested", "changes requested", "requested", ...
    given: str  # "1/2": verdicts given of the reviews assigned to them, "-" when none are
    reviewers: dict[str, str]  # each assigned reviewer's latest review of their document (latest_reviews)
    reviewing: dict[str, str]  # each classmate's document they review: their latest review of it, or "not ready"

    @property
    def summary(self) -> str:
        return f"{self.received}; gave {self.given}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


def review_standings(
    plan: ReviewPlan, api: GiteaAPI, learners: list[str], forge: ClassForge | None = None
) -> dict[str, ReviewStanding]:
    """Each of ``learners``' review standing under ``plan``, read from the forge as ``api``'s account (the admin);
    their lab repositories where ``forge`` says (default: ``<learner>/lab``).

    Only the documents whose reviews were requested are read: the others are "not ready" until
    `class reviews assign` runs again. A learner the plan does not name is "not assigned".
    """
    where = forge.lab_repository if forge else lambda learner: (learner, LAB_REPOSITORY)
    states = {
        author: latest_reviews(reviewed_pull_requests(ForgeRepository(api, *where(author))), reviewers)
        for author, reviewers in sorted(plan.reviewers.items())
        if author in plan.requested_on
    }
    standings = {}
    for learner in learners:
        if learner not in plan.reviewers:
            standings[learner] = ReviewStanding("not assigned", "-", {}, {})
            continue
        reviewing = {
            author: states[author][learner] if author in states else NOT_READY
            for author, reviewers in sorted(plan.reviewers.items())
            if learner in reviewers
        }
        given = sum(state in VERDICT_REVIEWS for state in reviewing.values())
        standings[learner] = ReviewStanding(
            _received(states.get(learner)),
            f"{given}/{len(reviewing)}" if reviewing else "-",
            states.get(learner, {}),
            reviewing,
        )
    return standings


def _received(reviews: dict[str, str] | None) -> str:
    if reviews is None:
        return NOT_READY
    approved = sum(state == "APPROVED" for state in reviews.values())
    changes = sum(state == "REQUEST_CHANGES" for state in reviews.values())
    parts = [f"{approved}/{len(reviews)} approved"] if approved else []
    if changes:
        parts.append(f"{changes} changes requested" if approved else "changes requested")
    if not parts and "COMMENT" in reviews.values():
        return "commented"
    return ", ".join(parts) or "requested"

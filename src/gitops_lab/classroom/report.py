"""`class report`: the assessments' evidence of each learner, read from the instructor's clone of their
repository at what they pushed (assessment/evidence.py). No cluster is needed: everything is in Git."""

from __future__ import annotations

from pathlib import Path

from gitops_lab.assessment.evidence import DESIGN, ForgeRepository, LearnerEvidence, pushed_evidence
from gitops_lab.classroom.record import learner_env_name, load_class, load_or_create_users, pushing_as
from gitops_lab.classroom.reviews import ClassForge, class_forge, load_plan
from gitops_lab.errors import NotFound
from gitops_lab.reporter import Reporter
from gitops_lab.state import load_state


def report(
    name: str,
    reporter: Reporter,
    learners: list[str] | None = None,
    forge: ClassForge | None = None,
) -> list[LearnerEvidence]:
    """One learner's evidence each, in the class's order (or ``learners``'), at what they pushed; with a forge
    (``forge``, else the class's own), their design pull requests, judged by the review plan when there is one.

    A repository that cannot be fetched is assessed as last fetched, and says why.
    """
    record = load_class(name)
    chosen = learners or record.learners
    unknown = [learner for learner in chosen if learner not in record.learners]
    if unknown:
        raise NotFound(
            f"there is no learner {', '.join(repr(u) for u in unknown)} in the class {record.name!r}",
            fix=f"use one of: {', '.join(record.learners) or 'none'}",
        )
    users, _ = load_or_create_users(name, record.learners)
    forge = forge or class_forge(record)
    plan = load_plan(name) if forge else None
    api = forge.admin() if forge else None
    evidences = []
    with pushing_as(users.writer), reporter.step(f"Reading the evidence of {len(chosen)} learners") as step:
        for learner in chosen:
            step.update(learner)
            repo = Path(load_state(learner_env_name(name, learner)).repo_path or "")
            on_forge = ForgeRepository(api, *forge.lab_repository(learner)) if api and forge else None
            assigned = plan.reviewers.get(learner) if plan else None
            evidences.append(pushed_evidence(learner, repo, on_forge, assigned))
        step.done(f"{sum(e.verdict(DESIGN).status == 'passed' for e in evidences)} design documents pass")
    return evidences

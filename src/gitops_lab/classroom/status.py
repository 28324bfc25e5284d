"""`class status`: one row per learner, their lab and step, and each environment's health."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.pushed import follow_pushed
from gitops_lab.classroom.record import ClassRecord, connect_cluster, load_class, load_or_create_users, pushing_as
from gitops_lab.classroom.reviews import ClassForge, class_forge, load_plan, review_standings
from gitops_lab.classroom.tenant import open_learner
from gitops_lab.errors import GitError
from gitops_lab.kube.client import Kube
from gitops_lab.labs.api import lab_standing, newest_started_lab, open_runner
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.status import EnvironmentReport, environment_reports

STATUS_READERS = 8


@dataclass
class LearnerRow:
    learner: str
    lab: str | None
    step: str | None
    checks_passing: int
    steps: int
    environments: dict[str, dict[str, Any]]
    message: str = ""
    # Why the learner's repository could not be fetched ("" when it could): the row is as last fetched.
    git_problem: str = ""
    # Their peer review (ReviewStanding.to_dict()) when the forge was read and reviews are assigned.
    reviews: dict[str, Any] | None = None

    @property
    def healthy(self) -> bool:
        return not self.git_problem and all(e["state"] != "failing" for e in self.environments.values())

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "healthy": self.healthy}
        if self.reviews is None:
            del data["reviews"]  # without the forge the row is what it always was
        return data


def status(
    name: str,
    reporter: Reporter,
    labs_root: Path,
    learners: list[str] | None = None,
    forge: ClassForge | None = None,
) -> list[LearnerRow]:
    """One row per learner: the lab they are in, its first step whose checks do not pass yet, how
    many steps' checks pass in order, and each environment's health, read from Git and the cluster;
    with a forge (``forge``, else the class's own: `class create --git-server gitea`) and a review plan,
    their peer review received and given.

    Tenants are read side by side (STATUS_READERS at a time): each read mostly waits on the
    API server and the Git server.
    """
    record = load_class(name)
    chosen = learners or record.learners
    forge = forge or class_forge(record)
    plan = load_plan(name) if forge else None  # a damaged plan is said before the cluster is read
    for learner in chosen:
        open_learner(record, learner)  # every name is checked before anything is read
    kube = connect_cluster(record, reporter)
    users, _ = load_or_create_users(name, record.learners)
    with (
        pushing_as(users.writer),
        reporter.step(f"Reading {len(chosen)} tenants") as step,
        ThreadPoolExecutor(max_workers=STATUS_READERS) as pool,
    ):
        # worker threads start with an empty context: each read runs in a copy of this one (the Git credentials)
        parent = contextvars.copy_context()
        rows = list(pool.map(lambda learner: parent.copy().run(learner_row, record, learner, kube, labs_root), chosen))
        step.done(f"{sum(r.healthy for r in rows)} of {len(rows)} healthy")
    if forge and plan:
        with reporter.step(f"Reading the reviews on {forge.url}") as step:
            standings = review_standings(plan, forge.admin(), chosen, forge)
            for row in rows:
                row.reviews = standings[row.learner].to_dict()
            step.done(f"{sum('approved' in s.received for s in standings.values())} of {len(standings)} approved")
    return rows


def learner_row(record: ClassRecord, learner: str, kube: Kube, labs_root: Path) -> LearnerRow:
    """One learner's row: Git as pushed (or as last fetched, saying why), the cluster, their lab."""
    lab_env = open_learner(record, learner, kube)
    git_problem = ""
    try:
        follow_pushed(Git(lab_env.repo), tags=True)
    except GitError as exc:
        git_problem = f"cannot fetch their repository, so Git is as last fetched: {exc.message}"
    environments = {
        r.environment: {
            "state": environment_state(r),
            "ok": r.ok,
            "version": r.version,
            "sync": r.sync,
            "health": r.health,
            "ready": f"{r.replicas_ready}/{r.replicas_desired}",
            "message": r.message,
        }
        for r in environment_reports(lab_env)
    }
    row = LearnerRow(learner, None, None, 0, 0, environments, git_problem=git_problem)
    row.lab = newest_started_lab(lab_env.repo)
    if row.lab:
        standing = lab_standing(open_runner(lab_env, Reporter(), labs_root), row.lab)
        row.step, row.checks_passing, row.steps, row.message = (
            standing.step,
            standing.checks_passing,
            standing.steps,
            standing.message,
        )
    return row


def environment_state(report: EnvironmentReport) -> str:
    """ok; reconciling (the engine is looking at Git again, which with many tenants is often the
    case at any moment, while the cluster serves what Git says); or failing."""
    if report.ok:
        return "ok"
    settled = (
        report.sync in ("Synced", "Applied")
        and report.replicas_ready >= report.replicas_desired > 0
        and report.version == (report.git_version or report.version)
    )
    return "reconciling" if settled and report.health in ("Unknown", "Progressing") else "failing"

"""`class reset`: learners back to a lab's start point or to the seed, by a new commit each,
under one deadline for the whole class (--timeout, as its help says)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.adapters.repo.seed import SEED_TAG
from gitops_lab.classroom.record import connect_cluster, load_class, load_or_create_users, pushing_as
from gitops_lab.classroom.tenant import open_learner
from gitops_lab.errors import WaitTimeout
from gitops_lab.deadline import Deadline, command_deadline
from gitops_lab.labs.api import open_runner, reset_to_lab, restore_tree
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.converge import converge
from gitops_lab.workflows.environment import LabEnvironment


@dataclass
class LearnerReset:
    learner: str
    lab: str | None
    commit: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reset(
    name: str, learners: list[str] | None, lab_id: str | None, reporter: Reporter, labs_root: Path, timeout: float
) -> list[LearnerReset]:
    """Back to a lab's start point (``lab_id``; started for learners who had not), or to the seed.

    Always by a new commit pushed to the learner's repository; their history stays.
    Everything, every learner's Git and waits included, ends by one deadline of
    ``timeout``: once it passes, the learners not reached yet are left as they were.
    """
    record = load_class(name)
    chosen = learners or record.learners
    for learner in chosen:
        open_learner(record, learner)  # every name is checked before anything changes
    done: list[LearnerReset] = []
    with command_deadline(timeout) as deadline:
        kube = connect_cluster(record, reporter)
        users, _ = load_or_create_users(name, record.learners)
        with pushing_as(users.writer):
            for index, learner in enumerate(chosen):
                if deadline.expired:
                    raise _out_of_time(deadline, f"before {learner}", done, chosen[index:])
                lab_env = open_learner(record, learner, kube)
                try:
                    if lab_id:
                        commit = reset_to_lab(open_runner(lab_env, reporter, labs_root, timeout), lab_id)
                    else:
                        commit = _reset_to_seed(lab_env, learner, deadline, reporter)
                except WaitTimeout as exc:
                    raise _out_of_time(
                        deadline, f"while resetting {learner} ({exc.message})", done, chosen[index + 1 :]
                    ) from exc
                done.append(LearnerReset(learner, lab_id, commit))
    return done


def _reset_to_seed(lab_env: LabEnvironment, learner: str, deadline: Deadline, reporter: Reporter) -> str:
    """The seed's tree in one new commit, published (or undone), then waited for until served."""
    git = Git(lab_env.repo)
    with reporter.step(f"Restoring {learner}'s repository to {SEED_TAG}") as step:
        publish.catch_up(git)
        message = t.compose(
            "Reset to the seed of the lab environments",
            [(t.ACTION, "class-reset"), ("Restored-From", SEED_TAG)],
            body="The instructor reset this learner's environments (`gitops-lab class reset`).",
        )
        with publish.published_or_undone(git, f"the reset of {learner}"):
            commit = restore_tree(git, SEED_TAG, ["."], message, allow_empty=True) or git.head()
            publish.push(git)
        step.done(commit[:7])
    converge(lab_env, ENVIRONMENTS, commit, deadline, reporter)
    return commit


def _out_of_time(deadline: Deadline, where: str, done: list[LearnerReset], left: list[str]) -> WaitTimeout:
    """The class's deadline passed: who was reset, and who was left as they were."""
    reset_ones = ", ".join(d.learner for d in done) or "nobody"
    return WaitTimeout(
        f"the {deadline.describe()} deadline of `class reset` (--timeout, one for the whole class) passed "
        f"{where}; reset: {reset_ones}; not started: {', '.join(left) or 'nobody'}",
        fix="run `gitops-lab class reset` again with a larger --timeout (for the learners not started: --learner)",
    )

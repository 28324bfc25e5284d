"""The lab runner as code above labs/ (the classroom) may use it: open a runner on an
environment already opened, read how far a lab's checks pass, reset to a lab's start point,
restore a working copy's tree from a ref in one new commit (``restore_tree``).

Only labs/ reaches into a runner's state, and the classroom imports no other lab module
(tests/unit/project/test_import_graph.py checks both).
The waits of a runner opened here end by the running command's deadline when
there is one (``deadline.command_deadline``), so a command that drives many
runners, `class reset`, keeps one deadline for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.repo.git import Git
from gitops_lab.errors import GitOpsLabError
from gitops_lab.labs.actions.doers import restore_tree
from gitops_lab.labs.runner import LabRunner
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.environment import LabEnvironment

__all__ = ["LabStanding", "lab_standing", "newest_started_lab", "open_runner", "reset_to_lab", "restore_tree"]

#: Where every lab's start tag lives (``start_tag``: gitops-lab/lab/<id>/start).
_START_TAGS = "refs/tags/gitops-lab/lab/"


def open_runner(environment: LabEnvironment, reporter: Reporter, labs_root: Path, timeout: float = 300) -> LabRunner:
    """A runner on ``environment``: its state, working copy and cluster connection, not opened again."""
    runner = LabRunner(environment.state.name, environment.repo, reporter, labs_root, environment.state, timeout)
    runner._environment = environment
    return runner


def newest_started_lab(repo: Path) -> str | None:
    """The lab whose start tag is the newest in ``repo`` (the one its learner is in), or None."""
    tags = Git(repo).out("for-each-ref", "--sort=-taggerdate", "--format=%(refname)", _START_TAGS)
    started = [ref.split("/")[4] for ref in tags.splitlines() if ref.endswith("/start") and ref.count("/") == 5]
    return started[0] if started else None


@dataclass
class LabStanding:
    """How far a lab's checks pass, in order, as read now from Git and the cluster."""

    lab: str
    steps: int = 0
    checks_passing: int = 0
    # The first step whose checks do not pass; "done" when all do; None when the lab cannot be read.
    step: str | None = None
    message: str = ""


def lab_standing(runner: LabRunner, lab_id: str) -> LabStanding:
    """Each step's checks in order, up to the first that does not pass (a check that cannot run fails)."""
    standing = LabStanding(lab_id)
    try:
        lab = runner.lab(lab_id)
    except GitOpsLabError as exc:
        standing.message = exc.message
        return standing
    standing.steps = len(lab.steps)
    ctx = runner.context_for(lab)
    for step in lab.steps:
        try:
            ok, results = runner.evaluate(ctx, step)
        except GitOpsLabError as exc:
            ok, results = False, []
            standing.message = exc.message
        if not ok:
            standing.step = step.id
            standing.message = standing.message or "; ".join(r.message for r in results if not r.passed)
            return standing
        standing.checks_passing += 1
    standing.step = "done"
    return standing


def reset_to_lab(runner: LabRunner, lab_id: str) -> str:
    """Back to ``lab_id``'s start point by a new commit (the lab is started where it was not, its setup
    run once), pushed and served. Returns the commit the working copy is at."""
    runner.start_fresh(runner.lab(lab_id), rerun_setup=False)
    return Git(runner.repo).head()

"""`lab test`: for each lab, per step: setup, the check must fail, solve, the check must pass; then reset to
the start point and verify the start state. It drives a LabRunner as `lab start`, `check` and `reset` do.

The whole run is one command deadline (`lab test --timeout`): every wait in it takes what is left. Once the
deadline passes, the step it cut short is reported as timed out, every step after it as not run (saying
which deadline), and the run stops: a lab left half-tested is started over from its start point next time.
"""

from __future__ import annotations

import time

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.deadline import Deadline, current_deadline
from gitops_lab.errors import GitOpsLabError, Interrupted
from gitops_lab.labs.actions.checks import check_live_matches_git, check_synced_healthy
from gitops_lab.labs.actions.context import CheckResult, LabContext, start_tag
from gitops_lab.labs.loader import Lab, LabFormatError, Step
from gitops_lab.labs.progress import LabProgress
from gitops_lab.labs.results import NOT_RUN_IN_TIME, TestCase, TestReport
from gitops_lab.labs.runner import LabCheckFailed, LabRunner


#: How long a check that reads the cluster may take to settle after a solution (see evaluate_settled).
SETTLE_SECONDS = 30

#: A step that fails this close to the run's deadline failed because of it: a wait gives up a moment
#: before the deadline object says it passed (git's low-speed limit counts whole seconds, a watch ends
#: on a whole second), and what it cut short is not the lab's fault.
DEADLINE_GRACE_SECONDS = 1.0


class _RunClock:
    """The run's deadline as `lab test` reports it: where it passed, and what the steps it left say."""

    def __init__(self, deadline: Deadline | None, report: TestReport):
        self.deadline, self.report = deadline, report

    def out_of_time(self) -> bool:
        return self.deadline is not None and self.deadline.remaining() < DEADLINE_GRACE_SECONDS

    def passed(self, where: str) -> None:
        """Record that the deadline passed ``where`` ("during lab/step", "after lab/step"), the first time only."""
        if self.report.deadline_passed is None and self.deadline is not None:
            self.report.deadline_passed, self.report.deadline = where, self.deadline.describe()

    def not_run(self) -> str:
        return f"{NOT_RUN_IN_TIME} of {self.report.deadline} (--timeout) passed {self.report.deadline_passed}"

    def cut_short(self, cause: str) -> str:
        return f"did not finish: the {self.report.deadline} deadline (--timeout, one for the whole run) passed: {cause}"

    def failed(self, case: TestCase, exc: Exception, where: str) -> None:
        """Record on ``case`` why it failed at ``where`` (lab/step): timed out when the deadline had passed by then,
        since what a deadline cut short is not the lab's fault."""
        cause = exc.one_line() if isinstance(exc, GitOpsLabError) else f"{type(exc).__name__}: {exc}"
        if self.out_of_time():
            self.passed(f"during {where}")
            case.status, case.message = "timed-out", self.cut_short(cause)
        else:
            case.status, case.message = "failed", cause


def test_labs(runner: LabRunner, lab_ids: list[str], engine: str | None) -> TestReport:
    """For each lab: start; per step setup, check must fail, solve, check must pass; reset, verify.
    Everything ends by the running command's deadline (``command_deadline``), when it has one."""
    report = TestReport(engine)
    clock = _RunClock(current_deadline(), report)
    for lab_id in lab_ids:
        try:
            lab = runner.lab(lab_id)
        except LabFormatError as exc:  # read from disk, no wait: reported even after the deadline
            report.cases.append(TestCase(exc.lab, "lab.yaml", "failed", "; ".join(exc.problems)))
            continue
        names = [*(step.id for step in lab.steps), "reset"]
        if engine and lab.needs_cluster() and engine not in lab.engines:
            report.cases.extend(
                TestCase(lab.id, step.id, "skipped", f"lab does not support {engine}") for step in lab.steps
            )
            continue
        if clock.out_of_time():
            clock.passed(f"before lab {lab.id}" if not report.cases else f"after {_last_run(report)}")
            report.cases.extend(TestCase(lab.id, name, "skipped", clock.not_run()) for name in names)
            continue
        missing = runner.missing_requirement(lab.requires, runner.lab_context(lab))
        if missing:
            report.cases.extend(TestCase(lab.id, name, "skipped", missing) for name in names)
            continue
        _test_lab(runner, lab, report, clock)
    return report


def _last_run(report: TestReport) -> str:
    ran = [c for c in report.cases if c.status != "skipped"] or report.cases
    return f"{ran[-1].lab}/{ran[-1].step}"


def evaluate_settled(runner: LabRunner, ctx: LabContext, step: Step) -> tuple[bool, list[CheckResult]]:
    """The step's checks right after its solution ran: a cluster settles for a moment after
    the engine reports the commit served (a Deployment's status catches up with a scale),
    so failing checks are read again for up to SETTLE_SECONDS before they count."""
    left = (current_deadline() or Deadline(ctx.timeout)).remaining()
    settle = Deadline(min(SETTLE_SECONDS, left))
    while True:
        ok, results = runner.evaluate(ctx, step)
        if ok or not ctx.has_cluster or settle.expired:
            return ok, results
        time.sleep(1)


def _test_lab(runner: LabRunner, lab: Lab, report: TestReport, clock: _RunClock) -> None:
    cases = [TestCase(lab.id, step.id) for step in lab.steps] + [TestCase(lab.id, "reset")]
    report.cases.extend(cases)
    stopped_at: str | None = None  # the step that failed or that the deadline cut short
    for index, (step, case) in enumerate(zip(lab.steps, cases)):
        if clock.out_of_time():
            clock.passed(f"before {lab.id}/{step.id}")
            stopped_at = step.id
            case.status, case.message = "skipped", clock.not_run()
            break
        began = time.monotonic()
        try:
            with runner.reporter.step(f"Testing {lab.id}/{step.id}") as status:
                if index == 0:
                    runner.start_fresh(lab)
                else:
                    runner.run_actions(runner.lab_context(lab), "setup", step)
                missing = runner.missing_requirement(step.requires, runner.lab_context(lab))
                if missing:
                    case.status, case.message = "skipped", missing
                    _mark_done(runner, lab, index)
                    status.done(f"skipped: {missing}")
                    continue
                ok, results = runner.evaluate(runner.lab_context(lab), step)
                if ok:
                    raise LabCheckFailed(
                        "the check passed before the solution ran, so it does not test the "
                        "step: " + "; ".join(r.message for r in results)
                    )
                if clock.out_of_time():  # a check that waited until the deadline: its failure says nothing
                    raise LabCheckFailed("the check before the solution: " + "; ".join(r.message for r in results))
                runner.run_actions(runner.lab_context(lab), "solve", step)
                ok, results = evaluate_settled(runner, runner.lab_context(lab), step)
                if not ok:
                    raise LabCheckFailed(
                        "the solution did not pass the check: " + "; ".join(r.message for r in results if not r.passed)
                    )
                _mark_done(runner, lab, index)
                status.done("setup, check fails, solve, check passes")
        except Interrupted:
            raise  # Ctrl-C stops `lab test`, not just the step it was in
        except Exception as exc:  # a broken lab must not stop the other labs
            clock.failed(case, exc, f"{lab.id}/{step.id}")
            stopped_at = step.id
        case.seconds = round(time.monotonic() - began, 3)
        if stopped_at:
            break
    if stopped_at:
        after = [c.step for c in cases].index(stopped_at) + 1
        for case in cases[after:-1]:
            case.status = "skipped"
            case.message = clock.not_run() if report.deadline_passed else f"not run: step {stopped_at} failed"
    reset_case = cases[-1]
    if report.deadline_passed:
        reset_case.status, reset_case.message = "skipped", clock.not_run()
        return
    if stopped_at and not runner.has_start_tag(Git(runner.repo), lab):
        reset_case.status, reset_case.message = (
            "skipped",
            f"not run: step {stopped_at} failed before a start point was recorded",
        )
        return
    began = time.monotonic()
    try:
        with runner.reporter.step(f"Testing {lab.id}: reset to the start point") as status:
            result = runner.reset(lab.id)
            verify_start(runner, lab)
            status.done(f"reset in {result.seconds:.1f}s; start state verified")
        if stopped_at:
            reset_case.status, reset_case.message = "passed", "reset after the failure worked"
    except Interrupted:
        raise
    except Exception as exc:
        clock.failed(reset_case, exc, f"{lab.id}/reset")
    reset_case.seconds = round(time.monotonic() - began, 3)


def _mark_done(runner: LabRunner, lab: Lab, index: int) -> None:
    progress = runner.progress.labs.setdefault(lab.id, LabProgress())
    progress.completed = [s.id for s in lab.steps[: index + 1]]
    progress.step = min(index + 1, len(lab.steps) - 1)
    progress.finished = index + 1 >= len(lab.steps)
    runner.progress.save()


def verify_start(runner: LabRunner, lab: Lab) -> None:
    """After reset: the pushed tree is the start tag's, the cluster serves it, step 1 is undone."""
    git = Git(runner.repo)
    ctx = runner.lab_context(lab)
    ref = ctx.pushed(refresh=True)
    if git.out("rev-parse", f"{ref}^{{tree}}") != git.out("rev-parse", f"refs/tags/{start_tag(lab.id)}^{{tree}}"):
        raise LabCheckFailed(f"after reset, the pushed tree differs from {start_tag(lab.id)}")
    if ctx.has_cluster:
        for env in ENVIRONMENTS:
            for result in (
                check_live_matches_git(ctx, {"env": env}),
                check_synced_healthy(ctx, {"env": env}),
            ):
                if not result.passed:
                    raise LabCheckFailed(f"after reset, {result.message}")
    ok, results = runner.evaluate(ctx, lab.steps[0])
    if ok:
        raise LabCheckFailed(f"after reset, the check of {lab.steps[0].id} passes, so the reset did not undo it")

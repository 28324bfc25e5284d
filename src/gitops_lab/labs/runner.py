"""The lab runner: start, check, hint, solve, reset and test a lab.

A lab's start point is a Git tag, ``gitops-lab/lab/<id>/start``, pushed with
the repository. Reset never rewrites history: it restores the tracked tree of
that tag in one new commit (learner commits stay in history, and HEAD is also
saved under refs/gitops-lab/backup/), then asks the engine to reconcile and
waits. Progress (current step, completed steps, marks) is saved per lab
environment in the state folder.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.errors import GitOpsLabError, Interrupted, NotFound, RepoStateError, UsageError
from gitops_lab.labs import actions
from gitops_lab.labs.actions import CheckResult, LabContext, start_tag
from gitops_lab.labs.loader import Action, Lab, LabFormatError, Step, discover, load_lab
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState, environment_dir, write_private_json
from gitops_lab.textfiles import load_json_object


#: How long a check that reads the cluster may take to settle after a solution (see evaluate_settled).
SETTLE_SECONDS = 30


class LabCheckFailed(GitOpsLabError):
    """The current step's check does not pass (yet)."""


# -- progress ----------------------------------------------------------------------
@dataclass
class LabProgress:
    step: int = 0
    completed: list[str] = field(default_factory=list)
    started_at: str = ""
    finished: bool = False
    marks: dict[str, Any] = field(default_factory=dict)


class ProgressStore:
    """labs.json in the environment's state folder: the active lab and each lab's progress."""

    def __init__(self, name: str):
        self.path = environment_dir(name) / "labs.json"
        self.active, self.labs = read_progress(self.path)

    def get(self, lab_id: str) -> LabProgress | None:
        return self.labs.get(lab_id)

    def save(self) -> None:
        write_private_json(
            self.path, {"active": self.active, "labs": {k: asdict(v) for k, v in sorted(self.labs.items())}}, mode=0o644
        )


def read_progress(path: Path) -> tuple[str | None, dict[str, LabProgress]]:
    """(active lab, progress per lab) from labs.json; UsageError naming the file when it is damaged."""
    fix = f"delete it (`rm {path}`; the labs' progress starts over), then run `gitops-lab lab start ID`"
    try:
        data = load_json_object(path, "lab progress file", fix)
    except FileNotFoundError:
        return None, {}
    active, labs = data.get("active"), data.get("labs")
    labs = {} if labs is None else labs
    problems = [] if active is None or isinstance(active, str) else ["active is not a lab id"]
    if not isinstance(labs, dict):
        problems.append("labs is not an object")
        labs = {}
    progress: dict[str, LabProgress] = {}
    for lab_id, value in labs.items():
        try:
            progress[lab_id] = _progress_from(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"labs.{lab_id}: {exc}")
    if problems:
        raise UsageError(f"the lab progress file {path} is damaged: {'; '.join(problems)}", fix=fix)
    return active, progress


def _progress_from(value: Any) -> LabProgress:
    if not isinstance(value, dict):
        raise TypeError("not an object")
    progress = LabProgress(**value)  # unknown keys raise TypeError
    expected = {"step": int, "completed": list, "started_at": str, "finished": bool, "marks": dict}
    wrong = [key for key, kind in expected.items() if not isinstance(getattr(progress, key), kind)]
    if wrong or isinstance(progress.step, bool) or progress.step < 0:
        raise ValueError(f"{', '.join(wrong) or 'step'} of the wrong type")
    return progress


# -- results -----------------------------------------------------------------------------
@dataclass
class StepState:
    id: str
    title: str
    status: str  # done, passed, failed, pending
    message: str = ""
    hints: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CheckReport:
    lab: str
    title: str
    steps: list[StepState]
    current: str | None
    passed: bool
    finished: bool
    next_instructions: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "title": self.title,
            "current": self.current,
            "passed": self.passed,
            "finished": self.finished,
            "steps": [asdict(s) for s in self.steps],
        }


@dataclass
class TestCase:
    lab: str
    step: str
    status: str = "passed"  # passed, failed, skipped
    message: str = ""
    seconds: float = 0.0


@dataclass
class TestReport:
    engine: str | None
    cases: list[TestCase] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.status != "failed" for c in self.cases)

    def failures(self) -> list[TestCase]:
        return [c for c in self.cases if c.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        labs: dict[str, list[dict[str, Any]]] = {}
        for case in self.cases:
            labs.setdefault(case.lab, []).append(asdict(case))
        return {
            "engine": self.engine,
            "passed": self.passed,
            "labs": [
                {"lab": k, "passed": all(c["status"] != "failed" for c in v), "steps": v} for k, v in labs.items()
            ],
        }


@dataclass
class ResetResult:
    lab: str
    commit: str
    backup_ref: str
    saved_uncommitted: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- dispatch -----------------------------------------------------------------------------
def run_action(ctx: LabContext, action: Action) -> None:
    """Run one doer through the registry; errors say which action of which file and line failed."""
    do, title = action.spec.do, action.spec.title
    if do is None or title is None:  # the loader refuses this; a registry entry lacks its runner
        raise actions.ActionFailed(
            f"{action.name} ({action.where}) is an assertion: it runs only in check", fix="move it to the step's check"
        )
    with ctx.reporter.step(title(action.params)):
        try:
            do(ctx, action.params)
        except Interrupted as exc:  # still an interrupt: the command stops with 130 or 143
            raise Interrupted(f"{action.name} ({action.where}) failed: {exc.message}", exc.fix, exc.exit_code) from exc
        except GitOpsLabError as exc:
            failed = actions.ActionFailed(f"{action.name} ({action.where}) failed: {exc.one_line()}")
            failed.exit_code = exc.exit_code  # a timeout keeps its own exit code
            raise failed from exc


def evaluate_action(ctx: LabContext, action: Action) -> CheckResult:
    """Run one assertion through the registry; an error becomes a failed check that says what went wrong."""
    check = action.spec.check
    try:
        if check is None:  # the loader refuses this; a registry entry lacks its check
            raise actions.ActionFailed(f"{action.name} changes things: it cannot be a check")
        result = check(ctx, action.params)
    except GitOpsLabError as exc:
        result = CheckResult(False, f"could not check: {exc.one_line()}")
    result.action = action.describe()
    if not result.passed and action.params.get("hint"):
        result.hint = action.params["hint"]
    return result


# -- the runner ----------------------------------------------------------------------------
class LabRunner:
    def __init__(
        self,
        name: str,
        repo: Path,
        reporter: Reporter,
        labs_root: Path,
        state: EnvironmentState | None,
        timeout: float = 300,
        kubeconfig: str | None = None,
        context: str | None = None,
    ):
        self.name, self.repo, self.reporter, self.labs_root = name, repo, reporter, labs_root
        self.state, self.timeout, self.kubeconfig, self.context = state, timeout, kubeconfig, context
        self.progress = ProgressStore(name)
        self._environment: Any = None  # a LabEnvironment, opened by the first LabContext that needs it

    # -- catalogue -----------------------------------------------------------------
    def catalogue(self) -> list[Lab | LabFormatError]:
        found: list[Lab | LabFormatError] = []
        for folder in discover(self.labs_root):
            try:
                found.append(load_lab(folder, self.labs_root.parent))
            except LabFormatError as exc:
                found.append(exc)
        return sorted(found, key=lambda x: (x.order, x.id) if isinstance(x, Lab) else (10**6, x.lab))

    def lab(self, lab_id: str) -> Lab:
        """Load one lab by id (or its number in `lab list`); a bad lab raises LabFormatError."""
        folder = self.labs_root / lab_id
        if not (folder / "lab.yaml").is_file():
            for lab in self.catalogue():
                if isinstance(lab, Lab) and str(lab.order) == lab_id:
                    return lab
            known = [p.name for p in discover(self.labs_root)]
            raise NotFound(f"there is no lab {lab_id!r}", fix=f"use one of: {', '.join(known) or 'none'}")
        return load_lab(folder, self.labs_root.parent)

    def list(self) -> list[dict[str, Any]]:
        rows = []
        for lab in self.catalogue():
            if isinstance(lab, LabFormatError):
                rows.append(
                    {
                        "id": lab.lab,
                        "title": "(invalid: see `gitops-lab lab test " + lab.lab + "`)",
                        "progress": "invalid",
                        "engines": [],
                        "steps": 0,
                        "active": False,
                    }
                )
                continue
            rows.append(
                {
                    "id": lab.id,
                    "title": lab.title,
                    "summary": lab.summary,
                    "engines": lab.engines,
                    "steps": len(lab.steps),
                    "progress": self._progress_text(lab),
                    "active": self.progress.active == lab.id,
                }
            )
        return rows

    def _progress_text(self, lab: Lab) -> str:
        progress = self.progress.get(lab.id)
        if progress is None:
            return "not started"
        if progress.finished:
            return "done"
        return f"step {progress.step + 1}/{len(lab.steps)}"

    # -- context --------------------------------------------------------------------
    def context_for(self, lab: Lab, progress: LabProgress | None = None) -> LabContext:
        ctx = LabContext(
            lab,
            self.repo,
            self.reporter,
            self.timeout,
            self.state,
            self.kubeconfig,
            self.context,
            marks=progress.marks if progress else {},
            name=self.name,
        )
        ctx._environment = self._environment
        return ctx

    def _remember(self, ctx: LabContext) -> None:
        self._environment = ctx._environment

    def _require_engine(self, lab: Lab) -> None:
        if not lab.needs_cluster():
            return
        if not (self.state and self.state.engine):
            raise UsageError(
                f"lab {lab.id} needs a cluster with Argo CD or Flux, and none is set up",
                fix="run `gitops-lab up` first",
            )
        if self.state.engine not in lab.engines:
            raise UsageError(
                f"lab {lab.id} supports {', '.join(lab.engines)}, not {self.state.engine}",
                fix=f"set up a lab environment with `gitops-lab up --engine {lab.engines[0]}`",
            )

    def active_lab(self, lab_id: str | None) -> tuple[Lab, LabProgress]:
        chosen = lab_id or self.progress.active
        if not chosen:
            raise UsageError("no lab is started", fix="run `gitops-lab lab list`, then `gitops-lab lab start ID`")
        lab = self.lab(chosen)
        progress = self.progress.get(lab.id)
        if progress is None:
            raise UsageError(f"lab {lab.id} is not started", fix=f"run `gitops-lab lab start {lab.id}`")
        return lab, progress

    # -- phases ------------------------------------------------------------------------
    def run_actions(self, ctx: LabContext, phase: str, step: Step) -> None:
        if phase == "setup":
            from gitops_lab.labs.observations import STEP_STARTED

            # Observation checks count only what the learner looked at since the step began.
            ctx.marks[STEP_STARTED] = time.time()
        for action in step.actions(phase):
            run_action(ctx, action)
        self._remember(ctx)

    def evaluate(self, ctx: LabContext, step: Step) -> tuple[bool, builtins.list[CheckResult]]:
        missing = self._missing_requirement(step.requires, ctx) if step.requires else None
        if missing:  # this environment cannot run the step: it counts as done, saying why
            return True, [CheckResult(True, f"skipped: {missing}", action="requires")]
        results = []
        for action in step.check:
            result = evaluate_action(ctx, action)
            if not result.passed and not result.hint and step.hints:
                result.hint = step.hints[0]
            results.append(result)
        self._remember(ctx)
        return all(r.passed for r in results), results

    def evaluate_settled(self, ctx: LabContext, step: Step) -> tuple[bool, builtins.list[CheckResult]]:
        """The step's checks right after its solution ran: a cluster settles for a moment after
        the engine reports the commit served (a Deployment's status catches up with a scale),
        so failing checks are read again for up to SETTLE_SECONDS before they count."""
        from gitops_lab.kube.deadline import Deadline

        settle = Deadline(min(SETTLE_SECONDS, ctx.timeout))
        while True:
            ok, results = self.evaluate(ctx, step)
            if ok or not ctx.has_cluster or settle.expired:
                return ok, results
            time.sleep(1)

    # -- start -----------------------------------------------------------------------------
    def start(self, lab_id: str) -> tuple[Lab, Step, str]:
        """Start, resume or restart a lab. Returns (lab, current step, how): "started", "resumed" or "restarted".

        A lab in progress resumes at its current step. A lab started before
        (finished, or its progress lost) starts over: reset to its start point,
        then the first step's setup runs again, so what the setup does outside
        Git (a hand-scaled Deployment) is there again too.
        """
        lab = self.lab(lab_id)
        self._require_engine(lab)
        progress = self.progress.get(lab.id)
        git = Git(self.repo)
        has_tag = self._has_tag(git, lab)
        if progress is not None and not progress.finished and has_tag:
            self.progress.active = lab.id
            self.progress.save()
            return lab, lab.steps[progress.step], "resumed"
        if has_tag:
            done = "is done" if progress is not None and progress.finished else "was started before"
            self.reporter.info(
                f"Lab {lab.id} {done}: starting it over. Resetting to {start_tag(lab.id)}, "
                f"then running the setup of step 1 ({lab.steps[0].title}) again."
            )
        self.start_fresh(lab, rerun_setup=True)
        return lab, lab.steps[0], "restarted" if has_tag else "started"

    def _has_tag(self, git: Git, lab: Lab) -> bool:
        tag = start_tag(lab.id)
        if git.remote_url():
            git.run("fetch", "--quiet", "origin", f"+refs/tags/{tag}:refs/tags/{tag}", check=False)
        return git.ok("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}")

    def _tag_start(self, git: Git, lab: Lab) -> None:
        publish.check_clean(git)
        publish.catch_up(git)
        with self.reporter.step(f"Recording the start point {start_tag(lab.id)}") as step:
            git.run("tag", "--annotate", start_tag(lab.id), "--message", f"Start of lab {lab.id}: {lab.title}")
            try:
                if git.remote_url():
                    git.run("push", "--quiet", "origin", f"refs/tags/{start_tag(lab.id)}")
            except BaseException:
                git.run("tag", "--delete", start_tag(lab.id), check=False)  # unpublished: the re-run tags again
                raise
            step.done(git.head()[:7])

    # -- check / hint / solve -----------------------------------------------------------------
    def check(self, lab_id: str | None = None, advance: bool = True) -> CheckReport:
        lab, progress = self.active_lab(lab_id)
        ctx = self.context_for(lab, progress)
        states: list[StepState] = []
        passed, finished, next_text = True, progress.finished, ""
        current_id = None if progress.finished else lab.steps[progress.step].id
        for index, step in enumerate(lab.steps):
            if progress.finished or index < progress.step:
                states.append(StepState(step.id, step.title, "done"))
            elif index == progress.step:
                ok, results = self.evaluate(ctx, step)
                failed = [r for r in results if not r.passed]
                hints = list(dict.fromkeys(r.hint for r in failed if r.hint))
                unpushed = ctx.unpushed() if failed else []
                if unpushed:
                    count = f"{len(unpushed)} commit{'s' if len(unpushed) != 1 else ''}"
                    hints.insert(
                        0,
                        f"you have {count} that {'is' if len(unpushed) == 1 else 'are'} not pushed "
                        f"({unpushed[0]}{', ...' if len(unpushed) > 1 else ''}), and checks read what "
                        "you pushed: run `git push`",
                    )
                states.append(
                    StepState(
                        step.id,
                        step.title,
                        "passed" if ok else "failed",
                        "; ".join(r.message for r in (failed or results)),
                        hints,
                        [r.to_dict() for r in results],
                    )
                )
                passed = ok
            else:
                states.append(StepState(step.id, step.title, "pending"))
        if passed and not progress.finished and advance:
            next_step = self._advance(lab, progress, ctx)
            if next_step is None:
                finished = True
            else:
                next_text = next_step.text()
        return CheckReport(lab.id, lab.title, states, current_id, passed, finished, next_text)

    def _advance(self, lab: Lab, progress: LabProgress, ctx: LabContext) -> Step | None:
        step = lab.steps[progress.step]
        if step.id not in progress.completed:
            progress.completed.append(step.id)
        if progress.step + 1 >= len(lab.steps):
            progress.finished = True
            self.progress.save()
            return None
        progress.step += 1
        self.progress.save()
        following = lab.steps[progress.step]
        self.run_actions(ctx, "setup", following)
        progress.marks = ctx.marks
        self.progress.save()
        return following

    def hint(self, lab_id: str | None = None) -> tuple[Lab, Step]:
        lab, progress = self.active_lab(lab_id)
        if progress.finished:
            raise UsageError(f"lab {lab.id} is done; nothing to hint", fix="pick another with `gitops-lab lab list`")
        return lab, lab.steps[progress.step]

    def current_step(self, lab_id: str | None = None) -> tuple[Lab, Step | None]:
        lab, progress = self.active_lab(lab_id)
        return lab, None if progress.finished else lab.steps[progress.step]

    def solve(self, step_id: str | None = None, lab_id: str | None = None) -> CheckReport:
        """Run the solution of the current step, or of every step up to ``step_id``, each checked."""
        lab, progress = self.active_lab(lab_id)
        if progress.finished:
            raise UsageError(f"lab {lab.id} is done", fix=f"run `gitops-lab lab reset {lab.id}` to do it again")
        target = lab.index(step_id) if step_id else progress.step
        if target < progress.step:
            raise UsageError(
                f"step {step_id} of lab {lab.id} is already done; the current step is {lab.steps[progress.step].id}",
                fix=f"run `gitops-lab lab reset {lab.id}` to start over",
            )
        report = None
        while True:
            step = lab.steps[progress.step]
            ctx = self.context_for(lab, progress)
            self.run_actions(ctx, "solve", step)
            index = progress.step
            report = self.check(lab.id)
            if not report.passed:
                failed = report.steps[index]
                raise LabCheckFailed(
                    f"the solution of {lab.id}/{step.id} did not pass its check: {failed.message}",
                    fix="the lab itself is broken; run `gitops-lab lab test " + lab.id + "`",
                )
            if index >= target or report.finished:
                return report

    # -- reset ------------------------------------------------------------------------------
    def reset(self, lab_id: str | None = None) -> ResetResult:
        """Back to the lab's start point by a new commit; learner work kept on backup refs."""
        chosen = lab_id or self.progress.active
        if not chosen:
            raise UsageError(
                "no lab is started, so there is nothing to reset", fix="name the lab: `gitops-lab lab reset ID`"
            )
        lab = self.lab(chosen)
        self._require_engine(lab)
        started = time.monotonic()
        git = Git(self.repo)
        if not self._has_tag(git, lab):
            raise UsageError(
                f"lab {lab.id} has no start point {start_tag(lab.id)}",
                fix=f"start it with `gitops-lab lab start {lab.id}`",
            )
        progress = self.progress.get(lab.id) or LabProgress()
        ctx = self.context_for(lab, progress)
        for index in range(min(progress.step, len(lab.steps) - 1), -1, -1):
            self.run_actions(ctx, "reset", lab.steps[index])
        with self.reporter.step(f"Restoring the repository to {start_tag(lab.id)}") as step:
            saved = save_uncommitted(git, f"lab-{lab.id}-uncommitted")
            operation = git.in_progress_operation()
            if operation:
                raise RepoStateError(
                    f"a {operation} is in progress in {git.path}",
                    fix=f"finish it or run `git {operation} --abort` first",
                )
            backup = publish.backup_ref(git, f"lab-{lab.id}-reset")
            publish.catch_up(git, unpublished="drop")  # the reset starts from the remote; HEAD is on backup
            tag_commit = git.out("rev-parse", f"refs/tags/{start_tag(lab.id)}^{{commit}}")
            message = t.compose(
                f"Reset lab {lab.id} to its start point",
                [(t.ACTION, actions.RESET_ACTION), (actions.LAB_TRAILER, lab.id), ("Restored-From", tag_commit)],
                body=f"Restores the tree of {start_tag(lab.id)}. The commits before this one stay in history; "
                f"HEAD before the reset is saved as {backup}.",
            )
            with publish.published_or_undone(git, f"the reset of lab {lab.id}"):
                commit = actions.restore_tree(git, tag_commit, ["."], message, allow_empty=True) or git.head()
                publish.push(git)
            step.done(f"{commit[:7]}; your work is kept on {backup}" + (f" and {saved}" if saved else ""))
        if ctx.has_cluster:
            ctx.converge(list(ENVIRONMENTS), commit)
            self._remember(ctx)
        from gitops_lab.labs.observations import STEP_STARTED

        # Back at step 1, which begins again now: earlier observations no longer count.
        self.progress.labs[lab.id] = LabProgress(
            started_at=progress.started_at or time.strftime("%Y-%m-%dT%H:%M:%S%z"), marks={STEP_STARTED: time.time()}
        )
        self.progress.active = lab.id
        self.progress.save()
        return ResetResult(lab.id, commit, backup, saved, round(time.monotonic() - started, 3))

    # -- test -------------------------------------------------------------------------------------
    def test(self, lab_ids: builtins.list[str], engine: str | None) -> TestReport:
        """For each lab: start; per step setup, check must fail, solve, check must pass; reset, verify."""
        report = TestReport(engine)
        for lab_id in lab_ids:
            try:
                lab = self.lab(lab_id)
            except LabFormatError as exc:
                report.cases.append(TestCase(exc.lab, "lab.yaml", "failed", "; ".join(exc.problems)))
                continue
            if engine and lab.needs_cluster() and engine not in lab.engines:
                for step in lab.steps:
                    report.cases.append(TestCase(lab.id, step.id, "skipped", f"lab does not support {engine}"))
                continue
            missing = self._missing_requirement(lab.requires, self._ctx(lab))
            if missing:
                report.cases.extend(
                    TestCase(lab.id, name, "skipped", missing) for name in [*(step.id for step in lab.steps), "reset"]
                )
                continue
            self._test_lab(lab, report)
        return report

    def _missing_requirement(self, requires: builtins.list[str], ctx: LabContext) -> str | None:
        """Why this environment cannot meet ``requires`` (of a lab or one of its steps), or None."""
        if "running-pods" not in requires:
            return None
        from gitops_lab.workflows.verify import pods_answer

        if not ctx.has_cluster:
            return None  # it fails like every lab that needs a cluster, saying to run `up`
        lab_env = ctx.environment()
        why = pods_answer(lab_env.kube, lab_env.namespace("dev"))
        return f"needs model-server pods that run and answer (a kind cluster): {why}" if why else None

    def _test_lab(self, lab: Lab, report: TestReport) -> None:
        cases = [TestCase(lab.id, step.id) for step in lab.steps] + [TestCase(lab.id, "reset")]
        report.cases.extend(cases)
        failed_at: str | None = None
        for index, (step, case) in enumerate(zip(lab.steps, cases)):
            began = time.monotonic()
            try:
                with self.reporter.step(f"Testing {lab.id}/{step.id}") as status:
                    if index == 0:
                        self.start_fresh(lab)
                    else:
                        self.run_actions(self._ctx(lab), "setup", step)
                    missing = self._missing_requirement(step.requires, self._ctx(lab))
                    if missing:
                        case.status, case.message = "skipped", missing
                        self._mark_done(lab, index)
                        status.done(f"skipped: {missing}")
                        continue
                    ok, results = self.evaluate(self._ctx(lab), step)
                    if ok:
                        raise LabCheckFailed(
                            "the check passed before the solution ran, so it does not test the "
                            "step: " + "; ".join(r.message for r in results)
                        )
                    self.run_actions(self._ctx(lab), "solve", step)
                    ok, results = self.evaluate_settled(self._ctx(lab), step)
                    if not ok:
                        raise LabCheckFailed(
                            "the solution did not pass the check: "
                            + "; ".join(r.message for r in results if not r.passed)
                        )
                    self._mark_done(lab, index)
                    status.done("setup, check fails, solve, check passes")
            except Interrupted:
                raise  # Ctrl-C stops `lab test`, not just the step it was in
            except GitOpsLabError as exc:
                case.status, case.message = "failed", exc.one_line()
                failed_at = step.id
            except Exception as exc:  # a broken lab must not stop the other labs
                case.status, case.message = "failed", f"{type(exc).__name__}: {exc}"
                failed_at = step.id
            case.seconds = round(time.monotonic() - began, 3)
            if failed_at:
                break
        if failed_at:
            after = [c.step for c in cases].index(failed_at) + 1
            for case in cases[after:-1]:
                case.status, case.message = "skipped", f"not run: step {failed_at} failed"
        reset_case = cases[-1]
        if failed_at and not self._has_tag(Git(self.repo), lab):
            reset_case.status, reset_case.message = (
                "skipped",
                f"not run: step {failed_at} failed before a start point was recorded",
            )
            return
        began = time.monotonic()
        try:
            with self.reporter.step(f"Testing {lab.id}: reset to the start point") as status:
                result = self.reset(lab.id)
                self.verify_start(lab)
                status.done(f"reset in {result.seconds:.1f}s; start state verified")
            if failed_at:
                reset_case.status, reset_case.message = "passed", "reset after the failure worked"
        except Interrupted:
            raise
        except GitOpsLabError as exc:
            reset_case.status, reset_case.message = "failed", exc.one_line()
        except Exception as exc:
            reset_case.status, reset_case.message = "failed", f"{type(exc).__name__}: {exc}"
        reset_case.seconds = round(time.monotonic() - began, 3)

    def _ctx(self, lab: Lab) -> LabContext:
        progress = self.progress.labs.setdefault(lab.id, LabProgress())
        return self.context_for(lab, progress)

    def _mark_done(self, lab: Lab, index: int) -> None:
        progress = self.progress.labs.setdefault(lab.id, LabProgress())
        progress.completed = [s.id for s in lab.steps[: index + 1]]
        progress.step = min(index + 1, len(lab.steps) - 1)
        progress.finished = index + 1 >= len(lab.steps)
        self.progress.save()

    def start_fresh(self, lab: Lab, rerun_setup: bool = True) -> None:
        """Start from the existing start point when there is one (reset to it), else run the
        first step's setup and record a new one. ``lab test`` re-runs the setup after a reset,
        so a changed setup is tested too."""
        self._require_engine(lab)
        git = Git(self.repo)
        if self._has_tag(git, lab):
            self.reset(lab.id)
            if rerun_setup:
                self.run_actions(self._ctx(lab), "setup", lab.steps[0])
        else:
            self.progress.labs[lab.id] = LabProgress(started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            self.run_actions(self._ctx(lab), "setup", lab.steps[0])
            self._tag_start(git, lab)
        self.progress.active = lab.id
        self.progress.save()

    def verify_start(self, lab: Lab) -> None:
        """After reset: the pushed tree is the start tag's, the cluster serves it, step 1 is undone."""
        git = Git(self.repo)
        ctx = self._ctx(lab)
        ref = ctx.pushed(refresh=True)
        if git.out("rev-parse", f"{ref}^{{tree}}") != git.out("rev-parse", f"refs/tags/{start_tag(lab.id)}^{{tree}}"):
            raise LabCheckFailed(f"after reset, the pushed tree differs from {start_tag(lab.id)}")
        if ctx.has_cluster:
            for env in ENVIRONMENTS:
                for result in (
                    actions.check_live_matches_git(ctx, {"env": env}),
                    actions.check_synced_healthy(ctx, {"env": env}),
                ):
                    if not result.passed:
                        raise LabCheckFailed(f"after reset, {result.message}")
        ok, results = self.evaluate(ctx, lab.steps[0])
        if ok:
            raise LabCheckFailed(f"after reset, the check of {lab.steps[0].id} passes, so the reset did not undo it")


def save_uncommitted(git: Git, reason: str) -> str | None:
    """Keep uncommitted changes (untracked files too) as a commit under a backup ref, then clean up."""
    ref = publish.snapshot_uncommitted(git, reason)
    if ref is None:
        return None
    git.run("restore", "--source=HEAD", "--staged", "--worktree", "--", ".")
    git.run("clean", "--force", "-d", "--quiet")
    return ref

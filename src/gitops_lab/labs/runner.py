"""The lab runner: start, check, hint, solve and reset a lab, and dispatch its actions through the registry.

A lab's start point is a Git tag, ``gitops-lab/lab/<id>/start``, pushed with
the repository. Reset never rewrites history: it restores the tracked tree of
that tag in one new commit (learner commits stay in history, and HEAD is also
saved under refs/gitops-lab/backup/), then asks the engine to reconcile and
waits. Progress (current step, completed steps, marks) is saved per lab
environment in the state folder (progress.py); what the commands return is in
results.py, and `lab test` drives a runner from harness.py.
"""

from __future__ import annotations

import builtins
import time
from pathlib import Path
from typing import Any

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.adapters.repo.pushed import fetch_tag
from gitops_lab.errors import GitOpsLabError, Interrupted, NotFound, RepoStateError, UsageError
from gitops_lab.gates.vuln_scan import INSTALL_FIX, find_scanner
from gitops_lab.labs.actions.context import LAB_TRAILER, RESET_ACTION, ActionFailed, CheckResult, LabContext, start_tag
from gitops_lab.labs.actions.doers import restore_tree
from gitops_lab.labs.loader import LEARNER_MEETS, Action, Lab, LabFormatError, Step, discover, load_lab
from gitops_lab.labs.progress import LabProgress, ProgressStore
from gitops_lab.labs.results import CheckReport, ResetResult, StepState
from gitops_lab.observations import STEP_STARTED
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState
from gitops_lab.workflows.pull_request import NO_FORGE_FIX
from gitops_lab.workflows.verify import pods_answer


class LabCheckFailed(GitOpsLabError):
    """The current step's check does not pass (yet)."""


# -- dispatch -----------------------------------------------------------------------------
def run_action(ctx: LabContext, action: Action) -> None:
    """Run one doer through the registry; errors say which action of which file and line failed."""
    do, title = action.spec.do, action.spec.title
    if do is None or title is None:  # the loader refuses this; a registry entry lacks its runner
        raise ActionFailed(
            f"{action.name} ({action.where}) is an assertion: it runs only in check", fix="move it to the step's check"
        )
    with ctx.reporter.step(title(action.params)):
        try:
            do(ctx, action.params)
        except Interrupted as exc:  # still an interrupt: the command stops with 130 or 143
            raise Interrupted(f"{action.name} ({action.where}) failed: {exc.message}", exc.fix, exc.exit_code) from exc
        except GitOpsLabError as exc:
            failed = ActionFailed(f"{action.name} ({action.where}) failed: {exc.one_line()}")
            failed.exit_code = exc.exit_code  # a timeout keeps its own exit code
            raise failed from exc


def evaluate_action(ctx: LabContext, action: Action) -> CheckResult:
    """Run one assertion through the registry; an error becomes a failed check that says what went wrong."""
    check = action.spec.check
    try:
        if check is None:  # the loader refuses this; a registry entry lacks its check
            raise ActionFailed(f"{action.name} changes things: it cannot be a check")
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

    def lab_context(self, lab: Lab) -> LabContext:
        """The context of ``lab`` with its saved progress (new progress when it has none)."""
        progress = self.progress.labs.setdefault(lab.id, LabProgress())
        return self.context_for(lab, progress)

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
            # Observation checks count only what the learner looked at since the step began.
            ctx.marks[STEP_STARTED] = time.time()
        for action in step.actions(phase):
            run_action(ctx, action)
        self._remember(ctx)

    def evaluate(self, ctx: LabContext, step: Step) -> tuple[bool, builtins.list[CheckResult]]:
        # what the learner can meet (a forge) is left to the check, which says how; the rest, where it is
        # missing, means this environment cannot run the step: it counts as done, saying why
        beyond_learner = [r for r in step.requires if r not in LEARNER_MEETS]
        missing = self.missing_requirement(beyond_learner, ctx) if beyond_learner else None
        if missing:
            return True, [CheckResult(True, f"skipped: {missing}", action="requires")]
        results = []
        for action in step.check:
            result = evaluate_action(ctx, action)
            if not result.passed and not result.hint and step.hints:
                result.hint = step.hints[0]
            results.append(result)
        self._remember(ctx)
        return all(r.passed for r in results), results

    def missing_requirement(self, requires: builtins.list[str], ctx: LabContext) -> str | None:
        """Why this environment cannot meet ``requires`` (of a lab or one of its steps), or None."""
        if "forge" in requires and ctx.forge() is None:
            return f"needs a forge (Gitea) for pull requests: {NO_FORGE_FIX}"
        if "osv-scanner" in requires:
            if find_scanner() is None:
                return f"needs osv-scanner, the vuln-scan gate's scanner: {INSTALL_FIX}"
        if "running-pods" not in requires:
            return None
        if not ctx.has_cluster:
            return None  # it fails like every lab that needs a cluster, saying to run `up`
        lab_env = ctx.environment()
        why = pods_answer(lab_env.kube, lab_env.namespace("dev"))
        return f"needs model-server pods that run and answer (a kind cluster): {why}" if why else None

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
        has_tag = self.has_start_tag(git, lab)
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

    def has_start_tag(self, git: Git, lab: Lab) -> bool:
        tag = start_tag(lab.id)
        fetch_tag(git, tag)
        return git.ok("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}")

    def _tag_start(self, git: Git, lab: Lab) -> None:
        publish.check_clean(git)
        publish.catch_up(git)
        with self.reporter.step(f"Recording the start point {start_tag(lab.id)}") as step:
            git.run("tag", "--annotate", start_tag(lab.id), "--message", f"Start of lab {lab.id}: {lab.title}")
            try:
                publish.push_tag(git, start_tag(lab.id))
            except BaseException:
                git.run("tag", "--delete", start_tag(lab.id), check=False)  # unpublished: the re-run tags again
                raise
            step.done(git.head()[:7])

    def start_fresh(self, lab: Lab, rerun_setup: bool = True) -> None:
        """Start from the existing start point when there is one (reset to it), else run the
        first step's setup and record a new one. ``lab test`` re-runs the setup after a reset,
        so a changed setup is tested too."""
        self._require_engine(lab)
        git = Git(self.repo)
        if self.has_start_tag(git, lab):
            self.reset(lab.id)
            if rerun_setup:
                self.run_actions(self.lab_context(lab), "setup", lab.steps[0])
        else:
            self.progress.labs[lab.id] = LabProgress(started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            self.run_actions(self.lab_context(lab), "setup", lab.steps[0])
            self._tag_start(git, lab)
        self.progress.active = lab.id
        self.progress.save()

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
        if not self.has_start_tag(git, lab):
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
                [(t.ACTION, RESET_ACTION), (LAB_TRAILER, lab.id), ("Restored-From", tag_commit)],
                body=f"Restores the tree of {start_tag(lab.id)}. The commits before this one stay in history; "
                f"HEAD before the reset is saved as {backup}.",
            )
            with publish.published_or_undone(git, f"the reset of lab {lab.id}"):
                commit = restore_tree(git, tag_commit, ["."], message, allow_empty=True) or git.head()
                publish.push(git)
            step.done(f"{commit[:7]}; your work is kept on {backup}" + (f" and {saved}" if saved else ""))
        if ctx.has_cluster:
            ctx.converge(list(ENVIRONMENTS), commit)
            self._remember(ctx)
        # Back at step 1, which begins again now: earlier observations no longer count.
        self.progress.labs[lab.id] = LabProgress(
            started_at=progress.started_at or time.strftime("%Y-%m-%dT%H:%M:%S%z"), marks={STEP_STARTED: time.time()}
        )
        self.progress.active = lab.id
        self.progress.save()
        return ResetResult(lab.id, commit, backup, saved, round(time.monotonic() - started, 3))


def save_uncommitted(git: Git, reason: str) -> str | None:
    """Keep uncommitted changes (untracked files too) as a commit under a backup ref, then clean up."""
    ref = publish.snapshot_uncommitted(git, reason)
    if ref is None:
        return None
    git.run("restore", "--source=HEAD", "--staged", "--worktree", "--", ".")
    git.run("clean", "--force", "-d", "--quiet")
    return ref

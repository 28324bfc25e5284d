"""`gitops-lab lab ...`: list, start, check, hint, solve, reset and test labs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gitops_lab.adapters.engines import ENGINES
from gitops_lab.cli.app import Application, environment_options, output_option, pass_app, repo_option
from gitops_lab.cli.evidence import out_option
from gitops_lab.reporter import CROSS, TICK
from gitops_lab.deadline import command_deadline

LAB_TIMEOUT_HELP = "One deadline for the whole command: every git call, render and wait in it."
LAB_TEST_TIMEOUT_HELP = (
    "One deadline for the whole run, every lab named: each setup, check, solve and reset takes what is left."
)
#: `lab test`'s default deadline for the whole run. `lab test --all` on a real kind cluster took 6 min 44 s
#: (Flux) and 7 min 17 s (Argo CD) on the 2-core development machine under load (tests/e2e/kind/test_kind_e2e.py,
#: its `up` included; the testbed's, tests/e2e/testbed/test_labs_e2e.py, 1 min 52 s and 4 min 39 s with `up`; both
#: run it with this default): 30 minutes is four times the slowest run, room for slower machines and more
#: labs, yet a hung run still ends well inside a CI job's hour.
LAB_TEST_TIMEOUT = 1800

labs_dir_option = click.option(
    "--labs-dir",
    metavar="DIR",
    envvar="GITOPS_LAB_LABS_DIR",
    help="Folder of labs. Default: the labs that ship with gitops-lab ($GITOPS_LAB_LABS_DIR).",
)


def _runner(
    app: Application,
    repo: str | None,
    output: str,
    labs_dir: str | None,
    timeout: float = 300,
    kubeconfig: str | None = None,
    context: str | None = None,
    need_repo: bool = True,
):
    from gitops_lab.labs.runner import LabRunner
    from gitops_lab.resources import labs_dir as shipped

    root = Path(labs_dir).expanduser().resolve() if labs_dir else shipped()
    path = app.repo_path(repo) if need_repo else Path(".")
    return LabRunner(app.name, path, app.reporter(output), root, app.state(), timeout, kubeconfig, context)


@click.group("lab")
def group() -> None:
    """Hands-on labs: GitOps for ML, one checked step at a time.

    Start a lab, follow its instructions, and let `lab check` confirm each step.
    `lab hint` helps, `lab solve` shows the way, `lab reset` starts over in seconds.

    \b
    Examples:
      gitops-lab lab list
      gitops-lab lab start gitops-basics
      gitops-lab lab check
    """


@group.command("list")
@labs_dir_option
@output_option
@pass_app
def list_command(app: Application, labs_dir: str | None, output: str) -> None:
    """List the labs with their title and your progress.

    \b
    Examples:
      gitops-lab lab list
      gitops-lab lab list --output json
    """
    from gitops_lab.cli.output import format_table

    runner = _runner(app, None, output, labs_dir, need_repo=False)
    rows = runner.list()
    table = format_table(
        ("", "LAB", "TITLE", "STEPS", "ENGINES", "PROGRESS"),
        [
            (
                "*" if r["active"] else "",
                r["id"],
                r["title"],
                str(r["steps"]),
                ",".join(r["engines"]) or "-",
                r["progress"],
            )
            for r in rows
        ],
    )
    app.emit(output, rows, table + "\n\nStart one with `gitops-lab lab start LAB`.")


@group.command("start")
@click.argument("lab_id", metavar="LAB")
@labs_dir_option
@environment_options(timeout_help=LAB_TIMEOUT_HELP)
@pass_app
def start_command(
    app: Application,
    lab_id: str,
    labs_dir: str | None,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Start a lab: prepare its first step, record its start point, show the instructions.

    The start point is a Git tag, gitops-lab/lab/LAB/start, pushed with the
    repository; `lab reset` returns to it. Starting a lab that is in progress
    resumes it at its current step. Starting a lab you finished starts it over:
    it is reset to its start point and the first step's setup runs again.

    \b
    Examples:
      gitops-lab lab start gitops-basics
      gitops-lab lab start 2            # the lab numbered 2 in `lab list`
    """
    runner = _runner(app, repo, output, labs_dir, timeout, kubeconfig, context)
    with command_deadline(timeout):
        lab, step, how = runner.start(lab_id)
    number = lab.steps.index(step) + 1
    verb = {"resumed": "Resuming", "restarted": "Started over:", "started": "Started"}[how]
    head = f"{verb} lab {lab.id}: {lab.title}\nYour working copy: {runner.repo}"
    text = (
        f"{head}\n\nStep {number}/{len(lab.steps)}: {step.title}\n\n{step.text().rstrip()}\n\n"
        "When you are done, run `gitops-lab lab check`. Stuck? `gitops-lab lab hint`."
    )
    app.emit(
        output,
        {
            "lab": lab.id,
            "step": step.id,
            "resumed": how == "resumed",
            "restarted": how == "restarted",
            "instructions": step.text(),
        },
        text,
    )


@group.command("check")
@click.option("--lab", "lab_id", metavar="LAB", help="Lab to check. Default: the one you started last.")
@labs_dir_option
@environment_options(timeout_help=LAB_TIMEOUT_HELP)
@pass_app
def check_command(
    app: Application,
    lab_id: str | None,
    labs_dir: str | None,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Check your work: every step so far with ✓ or ✗, and hints for what fails.

    When the current step passes, the next one is prepared and its
    instructions are shown. Exits 1 while the current step fails.

    \b
    Examples:
      gitops-lab lab check
      gitops-lab lab check --output json
    """
    runner = _runner(app, repo, output, labs_dir, timeout, kubeconfig, context)
    with command_deadline(timeout):
        report = runner.check(lab_id)
    app.emit(output, report.to_dict(), _check_text(report))
    if not report.passed:
        sys.exit(1)


def _check_text(report) -> str:
    marks = {"done": TICK, "passed": TICK, "failed": CROSS, "pending": "·"}
    lines = [f"Lab {report.lab}: {report.title}"]
    for number, step in enumerate(report.steps, 1):
        lines.append(f"  {marks[step.status]} {number}. {step.title}")
        if step.status in ("passed", "failed"):
            for result in step.results:
                lines.append(f"      {TICK if result['passed'] else CROSS} {result['message']}")
        for hint in step.hints:
            lines.append(f"      hint: {hint}")
    if report.finished and report.passed:
        lines.append("\nLab complete. Well done! See `gitops-lab lab list` for the next one.")
    elif report.passed and report.next_instructions:
        following = next(s for s in report.steps if s.status == "pending")
        lines.append(f"\nNext: {following.title}\n\n{report.next_instructions.rstrip()}")
    elif not report.passed:
        lines.append(
            "\nNot yet. Fix what is marked ✗ and run `gitops-lab lab check` again (`gitops-lab lab hint` helps)."
        )
    return "\n".join(lines)


@group.command("hint")
@click.option("--lab", "lab_id", metavar="LAB", help="Lab. Default: the one you started last.")
@labs_dir_option
@output_option
@pass_app
def hint_command(app: Application, lab_id: str | None, labs_dir: str | None, output: str) -> None:
    """Show the hints for the current step, and its instructions again.

    \b
    Examples:
      gitops-lab lab hint
    """
    runner = _runner(app, None, output, labs_dir, need_repo=False)
    lab, step = runner.hint(lab_id)
    hints = step.hints or ["Read the step's instructions again: `gitops-lab lab start " + lab.id + "` shows them."]
    text = f"Lab {lab.id}, step: {step.title}\n" + "\n".join(f"  {i}. {h}" for i, h in enumerate(hints, 1))
    app.emit(output, {"lab": lab.id, "step": step.id, "hints": hints}, text)


@group.command("solve")
@click.argument("step_id", metavar="[STEP]", required=False)
@click.option("--lab", "lab_id", metavar="LAB", help="Lab. Default: the one you started last.")
@labs_dir_option
@environment_options(timeout_help=LAB_TIMEOUT_HELP)
@pass_app
def solve_command(
    app: Application,
    step_id: str | None,
    lab_id: str | None,
    labs_dir: str | None,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Run the solution of the current step (or of every step up to STEP), then check it.

    Each action of the solution is shown as it runs, so you can see the
    commands a solution takes and do them yourself next time.

    \b
    Examples:
      gitops-lab lab solve
      gitops-lab lab solve to-prod      # in the promotion lab: every step up to to-prod
    """
    runner = _runner(app, repo, output, labs_dir, timeout, kubeconfig, context)
    with command_deadline(timeout):
        report = runner.solve(step_id, lab_id)
    app.emit(output, report.to_dict(), _check_text(report))


@group.command("reset")
@click.argument("lab_id", metavar="[LAB]", required=False)
@labs_dir_option
@environment_options(timeout_help=LAB_TIMEOUT_HELP)
@pass_app
def reset_command(
    app: Application,
    lab_id: str | None,
    labs_dir: str | None,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Return a lab's environments to its start point, in seconds, without recreating anything.

    Restores the repository's tree from the lab's start tag in one new commit
    (history is never rewritten), pushes it, asks the engine to reconcile and
    waits until every environment serves it. Your commits stay in history, and
    HEAD before the reset (and any uncommitted work) is saved under
    refs/gitops-lab/backup/.

    \b
    Examples:
      gitops-lab lab reset
      gitops-lab lab reset gitops-basics
      git log --oneline refs/gitops-lab/backup/   # what was saved
    """
    runner = _runner(app, repo, output, labs_dir, timeout, kubeconfig, context)
    with command_deadline(timeout):
        result = runner.reset(lab_id)
    text = (
        f"Lab {result.lab} is back at its start point ({result.commit[:7]}, {result.seconds:.1f}s).\n"
        f"Your previous HEAD is kept on {result.backup_ref}"
        + (f"; uncommitted work on {result.saved_uncommitted}" if result.saved_uncommitted else "")
        + "."
    )
    app.emit(output, result.to_dict(), text)


@group.command("test")
@click.argument("lab_ids", metavar="[LAB]...", nargs=-1)
@click.option("--all", "all_labs", is_flag=True, help="Test every lab.")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    help="The engine the environment runs (must match `up`); labs without it are skipped.",
)
@click.option("--junit", "junit", metavar="FILE", help="Write a JUnit XML report: one testcase per step.")
@labs_dir_option
@environment_options(timeout_help=LAB_TEST_TIMEOUT_HELP, timeout_default=LAB_TEST_TIMEOUT)
@pass_app
def test_command(
    app: Application,
    lab_ids: tuple[str, ...],
    all_labs: bool,
    engine: str | None,
    junit: str | None,
    labs_dir: str | None,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Test labs end to end: per step, setup; the check must FAIL; solve; the check must PASS.

    Then the lab is reset and its start state verified. Exits 1 on any
    deviation, naming the lab and step. For CI and for lab authors.
    --timeout is one deadline for the whole run: when it passes, the step
    it cut short and every step after it are reported as not run (in
    --junit too) and the command exits 3.

    \b
    Examples:
      gitops-lab lab test gitops-basics
      gitops-lab lab test --all --engine argocd --junit reports/labs.xml
    """
    from gitops_lab.cli.output import format_table
    from gitops_lab.errors import UsageError
    from gitops_lab.labs.harness import test_labs

    runner = _runner(app, repo, output, labs_dir, timeout, kubeconfig, context)
    if all_labs == bool(lab_ids):
        raise UsageError("name the labs to test, or pass --all (not both)", fix="e.g. `gitops-lab lab test --all`")
    state = app.state()
    if engine and state and state.engine and state.engine != engine:
        raise UsageError(
            f"the environment runs {state.engine}, not {engine}",
            fix=f"set one up with `gitops-lab up --engine {engine}`, or drop --engine",
        )
    chosen = [lab.id if hasattr(lab, "steps") else lab.lab for lab in runner.catalogue()] if all_labs else list(lab_ids)
    with command_deadline(timeout):
        report = test_labs(runner, chosen, engine or (state.engine if state else None))
    if junit:
        from gitops_lab.labs.junit import write_junit

        write_junit(report, junit)
    marks = {"passed": TICK, "failed": CROSS, "timed-out": CROSS, "skipped": "-"}
    table = format_table(
        ("", "LAB", "STEP", "SECONDS", "MESSAGE"),
        [(marks[c.status], c.lab, c.step, f"{c.seconds:.1f}", c.message) for c in report.cases],
    )
    app.emit(output, report.to_dict(), table)
    failures = report.failures()
    if report.deadline_passed:
        raise _out_of_time(report, timeout)
    if failures:
        from gitops_lab.labs.runner import LabCheckFailed

        first = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise LabCheckFailed(f"lab test failed: {first.lab}/{first.step}: {first.message}{more}")


def _out_of_time(report, timeout: float):
    """The run's one deadline passed: where, how much was left out, and the failures before it."""
    from gitops_lab.errors import WaitTimeout

    left = len(report.not_run())
    failures = report.failures()
    failed = f"; failed before it: {failures[0].lab}/{failures[0].step}" if failures else ""
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return WaitTimeout(
        f"lab test ran out of time: the {report.deadline} deadline (--timeout, one for the whole run) passed "
        f"{report.deadline_passed}; {left} step{'s' if left != 1 else ''} not run{failed}{more}",
        fix=f"run it again with a larger --timeout (more than {timeout:g} seconds), or test fewer labs at once",
    )


@group.command("report")
@click.option("--learner", metavar="NAME", help="The name the report gives you. Default: git's user.name.")
@click.option("--forge-url", metavar="URL", help="The lab's forge (Gitea), e.g. http://localhost:3000: adds reviews.")
@click.option(
    "--forge-credentials",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The accounts file the forge was seeded with (forge-credentials.json); needed with --forge-url.",
)
@click.option("--forge-repo", metavar="OWNER/NAME", help="The repository on the forge. Default: the learner's lab.")
@out_option
@repo_option
@output_option
@pass_app
def report_command(
    app: Application,
    learner: str | None,
    forge_url: str | None,
    forge_credentials: Path | None,
    forge_repo: str | None,
    out: Path | None,
    repo: str | None,
    output: str,
) -> None:
    """The evidence for the module's two assessments, for one learner (you), from what you pushed.

    The design document: `design check` run at the pushed head, and, with
    --forge-url, the pull requests that changed it with their reviews, each
    review's rubric scores read from its `Scores: 2,2,1,2,2,1,2 (12/14)` line
    (or what is wrong with that line), and the verdict: an approval whose
    scores meet the rubric's pass mark (without a forge: "no forge: reviews
    not available"). The demo:
    every promotion and rollback `gitops-lab release` made, with the
    environment, the versions from and to, the verdict and the verification
    evidence from the commits' trailers. Prints one verdict per assessment;
    --out DIR writes evidence.md and evidence-junit.xml (one testcase per
    assessment, failed when its evidence is missing). Exits 0 whatever the
    verdicts: they are the report.

    \b
    Examples:
      gitops-lab lab report
      gitops-lab lab report --out ./evidence
      gitops-lab lab report --forge-url http://localhost:3000 --forge-credentials forge-credentials.json
    """
    from gitops_lab.adapters.repo.git import Git
    from gitops_lab.assessment.evidence import open_forge, pushed_evidence
    from gitops_lab.cli.evidence import emit_evidence
    from gitops_lab.errors import UsageError

    path = app.repo_path(repo)
    if bool(forge_url) != bool(forge_credentials):
        raise UsageError("--forge-url and --forge-credentials go together", fix="pass both, or neither")
    forge = open_forge(forge_url, forge_credentials, forge_repo) if forge_url and forge_credentials else None
    name = learner or Git(path).run("config", "user.name", check=False).stdout.strip() or "learner"
    with app.reporter(output).step("Reading the evidence of what you pushed") as step:
        evidence = pushed_evidence(name, path, forge)
        step.done(", ".join(f"{v.assessment} {v.status}" for v in evidence.verdicts))
    emit_evidence(app, [evidence], out, output, f"Assessment evidence: {name}")


command = group

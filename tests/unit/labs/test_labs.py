"""The lab runner without a cluster: Git-only test labs against a real bare remote.

`lab test` must fail loudly (non-zero, naming lab and step) for a lab whose
check passes before its solution, a lab whose solution does not pass, and a
malformed lab (with file:line); it passes for a good lab and lists every step
in JUnit. The learner commands (start, check, hint, solve, reset) work, reset
keeps the learner's commits on a backup ref, and the shipped labs all load.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from helpers import paths
from gitops_lab.labs.loader import LabFormatError, discover, load_lab
from gitops_lab.resources import labs_dir
from helpers.labenv import seeded_lab_env
from helpers.gitutil import git, last_trailers

TESTDATA = paths.TESTDATA / "labs"


@pytest.fixture
def lab_env(tmp_path, monkeypatch):
    """A seeded working copy with a bare remote, the test labs, and a CLI runner."""
    return seeded_lab_env(tmp_path, monkeypatch, TESTDATA)


def test_good_lab_passes_and_junit_lists_every_step(lab_env, tmp_path):
    cli, wc, remote = lab_env
    junit = tmp_path / "report.xml"
    result = cli("lab", "test", "good", "--junit", str(junit), "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True
    [lab] = report["labs"]
    assert [(s["step"], s["status"]) for s in lab["steps"]] == [
        ("scale-dev", "passed"),
        ("new-model", "passed"),
        ("note", "passed"),
        ("reset", "passed"),
    ]
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("labs.good", "scale-dev"),
        ("labs.good", "new-model"),
        ("labs.good", "note"),
        ("labs.good", "reset"),
    ]
    assert not ET.parse(junit).getroot().findall(".//failure")
    # After the test, the remote is back at the start point's tree, by new commits only.
    assert git(remote, "rev-parse", "main^{tree}") == git(remote, "rev-parse", "gitops-lab/lab/good/start^{tree}")
    assert git(remote, "merge-base", "--is-ancestor", "gitops-lab/lab/good/start", "main") == ""


def test_check_that_passes_before_solving_fails_the_test_naming_the_step(lab_env, tmp_path):
    cli, _, _ = lab_env
    junit = tmp_path / "report.xml"
    result = cli("lab", "test", "passes-early", "--junit", str(junit))
    assert result.exit_code != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: lab test failed: passes-early/already-true: the check passed before the solution")
    failures = ET.parse(junit).getroot().findall(".//testcase[failure]")
    assert [c.get("name") for c in failures] == ["already-true"]


def test_solution_that_does_not_pass_fails_the_test_naming_the_step(lab_env):
    cli, _, _ = lab_env
    result = cli("lab", "test", "broken-solution", "--output", "json")
    assert result.exit_code != 0
    assert "broken-solution/scale-dev: the solution did not pass the check" in result.stderr
    assert "sets 3 replicas, not 4" in result.stderr
    steps = json.loads(result.stdout)["labs"][0]["steps"]
    assert steps[0]["status"] == "failed"


def test_malformed_lab_fails_with_every_problem_and_its_line(lab_env, tmp_path):
    cli, wc, remote = lab_env
    head = git(remote, "rev-parse", "main")
    result = cli("lab", "test", "malformed", "--junit", str(tmp_path / "r.xml"))
    assert result.exit_code != 0
    message = result.stderr
    for expected in (
        "lab.yaml:4: engines: unknown engine 'jenkins'",
        "lab.yaml:8: steps[0].instructions: 'missing.md' does not exist",
        "lab.yaml:10: steps[0].setup[0]: unknown action 'promot'; expected one of: restore,",
        "lab.yaml:12: steps[0].check[0].env: unknown environment 'qa'; expected serves: {env:",
        "lab.yaml:14: steps[0].solve[0]: promote needs 'to'",
    ):
        assert expected in message
    # A bad lab never starts half-way: nothing was committed or tagged.
    assert git(remote, "rev-parse", "main") == head
    started = cli("lab", "start", "malformed")
    assert started.exit_code == 2 and "lab malformed is invalid (5 problems)" in started.stderr
    assert git(remote, "tag", "--list", "gitops-lab/lab/*") == ""


def test_all_runs_every_lab_and_fails_when_one_fails(lab_env, tmp_path):
    cli, _, _ = lab_env
    junit = tmp_path / "all.xml"
    result = cli("lab", "test", "--all", "--junit", str(junit))
    assert result.exit_code != 0
    names = [(c.get("classname"), c.get("name")) for c in ET.parse(junit).getroot().findall(".//testcase")]
    assert ("labs.good", "note") in names and ("labs.malformed", "lab.yaml") in names
    assert ("labs.passes-early", "scale-dev") in names and ("labs.broken-solution", "reset") in names


def test_learner_walk_start_check_hint_solve(lab_env):
    cli, wc, remote = lab_env
    listed = json.loads(cli("lab", "list", "--output", "json").stdout)
    assert {r["id"]: r["progress"] for r in listed}["good"] == "not started"

    started = cli("lab", "start", "good")
    assert started.exit_code == 0, started.output
    assert "Step 1/3: Scale dev to 2 replicas" in started.stdout
    assert "Change the replicas of dev to 2 in Git." in started.stdout
    assert git(remote, "rev-parse", "gitops-lab/lab/good/start^{commit}") == git(remote, "rev-parse", "main")

    failing = cli("lab", "check")
    assert failing.exit_code == 1
    assert "✗ 1. Scale dev to 2 replicas" in failing.stdout
    assert "hint: Set `count:`" in failing.stdout

    hint = cli("lab", "hint", "--output", "json")
    assert json.loads(hint.stdout)["step"] == "scale-dev"

    # The learner does it by hand with plain git.
    overlay = wc / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("count: 1", "count: 2"))
    git(wc, "commit", "-qam", "Scale dev to 2")
    unpushed = cli("lab", "check")
    assert unpushed.exit_code == 1, "a commit that was not pushed must not pass"
    mine = git(wc, "rev-parse", "--short", "HEAD")
    assert (
        f"hint: you have 1 commit that is not pushed ({mine} Scale dev to 2), and checks read what you pushed: "
        "run `git push`" in unpushed.stdout
    )
    git(wc, "push", "-q", "origin", "main")
    passing = cli("lab", "check")
    assert passing.exit_code == 0, passing.output
    assert "✓ 1. Scale dev to 2 replicas" in passing.stdout
    assert "Next: Deploy v3 to dev" in passing.stdout

    solved = cli("lab", "solve", "note", "--output", "json")
    assert solved.exit_code == 0, solved.output
    assert json.loads(solved.stdout)["finished"] is True
    listed = json.loads(cli("lab", "list", "--output", "json").stdout)
    assert {r["id"]: r["progress"] for r in listed}["good"] == "done"


def test_reset_keeps_learner_commits_and_uncommitted_work(lab_env):
    cli, wc, remote = lab_env
    assert cli("lab", "start", "good").exit_code == 0
    start = git(remote, "rev-parse", "main")
    overlay = wc / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("count: 1", "count: 5"))
    git(wc, "commit", "-qam", "My own experiment")
    git(wc, "push", "-q", "origin", "main")
    mine = git(wc, "rev-parse", "HEAD")
    (wc / "scratch.txt").write_text("not committed yet\n")

    result = cli("lab", "reset", "--output", "json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    # History is not rewritten: the learner's commit is an ancestor of the reset commit.
    assert git(remote, "rev-parse", "main") == done["commit"]
    assert git(remote, "rev-parse", f"{done['commit']}^") == mine
    assert git(wc, "rev-parse", done["backup_ref"]) == mine
    saved = done["saved_uncommitted"]
    assert git(wc, "show", f"{saved}:scratch.txt") == "not committed yet"
    # The tree is the start point's again.
    assert git(remote, "rev-parse", "main^{tree}") == git(remote, "rev-parse", f"{start}^{{tree}}")
    assert "count: 1" in overlay.read_text() and not (wc / "scratch.txt").exists()
    trailers = last_trailers(remote)
    assert "Gitops-Lab-Action: lab-reset" in trailers and "Lab: good" in trailers
    # And the lab is at its first step again.
    assert cli("lab", "check").exit_code == 1


@pytest.mark.parametrize("folder", discover(labs_dir()), ids=lambda p: p.name)
def test_shipped_labs_load_and_validate(folder):
    lab = load_lab(folder)
    assert lab.engines == ["argocd", "flux"]
    assert len(lab.steps) >= 2
    for step in lab.steps:
        assert step.text().startswith("# "), f"{step.instructions} needs a title line"
        assert step.hints, f"{lab.id}/{step.id} has no hint"


def test_the_shipped_labs_are_numbered_one_to_n_once_each():
    # `lab list` numbers the labs and `lab start N` starts the lab of that number: one each, no gaps.
    orders = sorted(load_lab(f).order for f in discover(labs_dir()))
    assert orders == list(range(1, len(orders) + 1))


def test_loader_reports_yaml_syntax_errors_with_line(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "lab.yaml").write_text("id: broken\ntitle: [unclosed\n")
    with pytest.raises(LabFormatError) as caught:
        load_lab(folder)
    assert "lab.yaml:" in caught.value.problems[0] and "not valid YAML" in caught.value.problems[0]


def test_starting_a_finished_lab_says_so_and_runs_the_setup_again(lab_env):
    cli, wc, remote = lab_env
    runs = wc / ".git" / "gitops-lab-setup-runs"
    assert cli("lab", "start", "good").exit_code == 0
    assert cli("lab", "solve", "note").exit_code == 0
    assert runs.read_text() == "run\n"

    again = cli("lab", "start", "good", "--output", "json")
    assert again.exit_code == 0, again.output
    assert (
        "Lab good is done: starting it over. Resetting to gitops-lab/lab/good/start, then running the setup "
        "of step 1 (Scale dev to 2 replicas) again." in again.stderr
    )
    data = json.loads(again.stdout)
    assert (data["step"], data["restarted"], data["resumed"]) == ("scale-dev", True, False)
    assert runs.read_text() == "run\nrun\n"
    # Back at step 1, undone: its check fails until the learner does it again.
    assert cli("lab", "check").exit_code == 1
    # Started again while in progress, it resumes and runs nothing.
    resumed = cli("lab", "start", "good")
    assert "Resuming lab good" in resumed.stdout and runs.read_text() == "run\nrun\n"


def test_observation_steps_are_checked_lightly_without_giving_the_answer(lab_env):
    cli, wc, remote = lab_env
    assert cli("lab", "test", "look-first").exit_code == 0
    assert cli("lab", "start", "look-first").exit_code == 0
    before = cli("lab", "check")
    assert before.exit_code == 1
    assert "✗ this step asks you to look first: run `gitops-lab gate run --to staging --version v3`" in before.stdout
    assert cli("gate", "run", "--to", "staging", "--version", "v3", "--gate", "model-eval").exit_code == 4
    after = cli("lab", "check")
    assert after.exit_code == 0, after.output
    assert "✓ gate model-eval on v3 -> staging: fail, as expected" in after.stdout
    assert "0.5172" not in after.stdout  # the accuracy the step asks the learner to read
    assert cli("lab", "check").exit_code == 1  # the history step: not read yet
    assert cli("history", "--env", "dev").exit_code == 0
    assert cli("lab", "check").exit_code == 0


def test_a_lab_may_require_running_pods_and_nothing_else(tmp_path):
    folder = tmp_path / "needs"
    shutil.copytree(TESTDATA / "good", folder)
    text = (folder / "lab.yaml").read_text().replace("id: good", "id: needs")
    (folder / "lab.yaml").write_text(text.replace("\nsteps:", "\nrequires: [running-pods]\nsteps:", 1))
    assert load_lab(folder).requires == ["running-pods"]
    (folder / "lab.yaml").write_text(text.replace("\nsteps:", "\nrequires: [gpus]\nsteps:", 1))
    with pytest.raises(LabFormatError) as caught:
        load_lab(folder)
    assert "requires: expected a list of: running-pods" in "; ".join(caught.value.problems)


def test_a_cluster_check_that_settles_after_the_solution_passes_and_one_that_never_does_fails(tmp_path, monkeypatch):
    """After a solution, the engine may report the commit served a moment before a Deployment's
    status catches up: lab test reads cluster checks again (briefly) before failing them, and
    still fails a check that never passes."""
    from types import SimpleNamespace

    from gitops_lab.labs import harness
    from gitops_lab.labs import runner as runner_module
    from gitops_lab.labs.actions.context import CheckResult
    from gitops_lab.labs.loader import Step
    from gitops_lab.reporter import reporter_for

    answers = iter([CheckResult(False, "2 of 3 replicas updated"), CheckResult(True, "3/3 replicas ready")])
    monkeypatch.setattr(runner_module, "evaluate_action", lambda ctx, action: next(answers))
    monkeypatch.setattr(harness.time, "sleep", lambda seconds: None)
    run = runner_module.LabRunner("lab", tmp_path, reporter_for("text"), tmp_path, None)
    step = Step("s", "s", tmp_path / "s.md", [], [], [{"replicas": {"env": "prod", "count": 3}}], [], [], "lab.yaml")
    ctx = SimpleNamespace(has_cluster=True, timeout=60, _environment=None)
    ok, results = harness.evaluate_settled(run, ctx, step)
    assert ok and results[0].message == "3/3 replicas ready"

    monkeypatch.setattr(
        runner_module, "evaluate_action", lambda ctx, action: CheckResult(False, "2 of 3 replicas updated")
    )
    monkeypatch.setattr(harness, "SETTLE_SECONDS", 0)
    ok, results = harness.evaluate_settled(run, ctx, step)
    assert not ok and results[0].message == "2 of 3 replicas updated"

    calls = []
    monkeypatch.setattr(
        runner_module, "evaluate_action", lambda ctx, action: calls.append(1) or CheckResult(False, "no")
    )
    monkeypatch.setattr(harness, "SETTLE_SECONDS", 30)
    ok, _ = harness.evaluate_settled(run, SimpleNamespace(has_cluster=False, timeout=60, _environment=None), step)
    assert not ok and len(calls) == 1, "a Git-only check is read once: it cannot settle"


def test_a_step_may_require_running_pods_and_nothing_else(tmp_path):
    folder = TESTDATA / "look-first"
    text = (folder / "lab.yaml").read_text()
    assert load_lab(folder).steps[1].requires == []
    mine = tmp_path / "look-first"
    shutil.copytree(folder, mine)
    (mine / "lab.yaml").write_text(
        text.replace(
            "    hint: Run `gitops-lab history --env dev`.",
            "    requires: [running-pods]\n    hint: Run `gitops-lab history --env dev`.",
            1,
        )
    )
    assert load_lab(mine).steps[1].requires == ["running-pods"]
    (mine / "lab.yaml").write_text(
        text.replace(
            "    hint: Run `gitops-lab history --env dev`.",
            "    requires: [gpus]\n    hint: Run `gitops-lab history --env dev`.",
            1,
        )
    )
    with pytest.raises(LabFormatError) as caught:
        load_lab(mine)
    assert "steps[1].requires: expected a list of: running-pods" in "; ".join(caught.value.problems)


# -- one deadline for the whole `lab test` run ----------------------------------------------------------------
def _deadline_cases(junit: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(lab, step) -> (what JUnit says: passed, error, failure or skipped; its message)."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        child = next(iter(case), None)
        kind = "passed" if child is None else child.tag
        found[(case.get("classname", "").removeprefix("labs."), case.get("name", ""))] = (
            kind,
            "" if child is None else child.get("message", ""),
        )
    return found


def test_lab_test_is_one_deadline_and_a_push_that_never_ends_stops_the_run_with_the_rest_not_run(lab_env, tmp_path):
    """The remote takes the start tag but never answers a push to main: the solution of good's first step
    waits on it until the run's deadline (8s for the whole run, not per wait), which stops the run."""
    from helpers.faults import install_hook

    cli, wc, remote = lab_env
    install_hook(
        remote, "pre-receive", 'while read old new ref; do [ "$ref" = refs/heads/main ] && exec sleep 600; done; exit 0'
    )
    junit = tmp_path / "report.xml"
    result = cli("lab", "test", "good", "look-first", "--timeout", "8", "--junit", str(junit), "--output", "json")

    assert result.exit_code == 3, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "error: lab test ran out of time: the 8s deadline (--timeout, one for the whole run) passed during "
        "good/scale-dev; 7 steps not run; run it again with a larger --timeout (more than 8 seconds), "
        "or test fewer labs at once"
    )
    report = json.loads(result.stdout)
    assert report["passed"] is False and report["deadline_passed"] == "during good/scale-dev"
    cases = _deadline_cases(junit)
    kind, message = cases.pop(("good", "scale-dev"))
    assert kind == "error" and message.startswith(
        "did not finish: the 8s deadline (--timeout, one for the whole run) passed: "
    )
    not_run = "not run: the deadline of 8s (--timeout) passed during good/scale-dev"
    assert cases == {
        (lab, step): ("skipped", not_run)
        for lab, step in [
            ("good", "new-model"),
            ("good", "note"),
            ("good", "reset"),
            ("look-first", "gates"),
            ("look-first", "history"),
            ("look-first", "reset"),
        ]
    }
    # The push the deadline cut short published nothing: the remote's main is still the start point.
    assert git(remote, "rev-parse", "main") == git(remote, "rev-parse", "gitops-lab/lab/good/start^{commit}")


def test_a_check_that_waits_for_what_never_comes_ends_at_the_runs_deadline(lab_env, tmp_path):
    """A lab's own check waits, by the command's deadline, for a file nobody writes: the run's one deadline
    ends it; the step is an error naming the deadline, and the next lab is not run."""
    cli, _, _ = lab_env
    labs = tmp_path / "labs"
    shutil.copytree(TESTDATA / "good", labs / "good")
    shutil.copytree(TESTDATA / "good", labs / "waits")
    text = (labs / "waits" / "lab.yaml").read_text().replace("id: good", "id: waits")
    (labs / "waits" / "lab.yaml").write_text(
        text.replace("      - replicas: {env: dev, count: 2}", "      - python: waiting:never_comes", 1)
    )
    (labs / "waits" / "waiting.py").write_text(
        "import time\n"
        "from gitops_lab.errors import WaitTimeout\n\n\n"
        "def never_comes(ctx):\n"
        "    deadline = ctx.deadline()\n"
        "    while not (ctx.repo / '.git' / 'never-written').exists():\n"
        "        if deadline.expired:\n"
        "            raise WaitTimeout(f'nothing came within {deadline.describe()}')\n"
        "        time.sleep(0.1)\n"
        "    return True, 'it came'\n"
    )
    junit = tmp_path / "report.xml"
    result = cli("lab", "test", "waits", "good", "--labs-dir", str(labs), "--timeout", "5", "--junit", str(junit))

    assert result.exit_code == 3, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: lab test ran out of time: the 5s deadline (--timeout, one for the whole run)")
    assert "passed during waits/scale-dev; 8 steps not run" in last
    cases = _deadline_cases(junit)
    kind, message = cases.pop(("waits", "scale-dev"))
    assert kind == "error" and "the 5s deadline" in message and "nothing came within 5s" in message
    assert {kind for kind, _ in cases.values()} == {"skipped"}
    assert {message for _, message in cases.values()} == {
        "not run: the deadline of 5s (--timeout) passed during waits/scale-dev"
    }
    assert set(cases) == {("waits", s) for s in ("new-model", "note", "reset")} | {
        ("good", s) for s in ("scale-dev", "new-model", "note", "reset")
    }

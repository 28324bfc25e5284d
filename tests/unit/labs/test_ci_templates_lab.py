"""The CI-template lab's checks (labs/ci-templates/checks.py) against a real platform repository at its tags.

The lab repository is the seeded working copy; the platform repository
(ml-platform-pipelines) is seeded beside its remote, as `up` serves both. Each
check is called as `lab check` calls it; every way a caller or a release can be
wrong fails, naming the input and the tag. The whole lab passing `lab test`:
tests/ci_templates/test_ci_templates.py (it runs every stage).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers.gitutil import git
from helpers.paths import REPO

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.platform import PLATFORM_REPOSITORY, seed_platform
from gitops_lab.pipeline import callers as c
from gitops_lab.pipeline.stages import STAGES

TOOLING = "git+https://git.example.com/tools/gitops-lab.git@v0.1.0"


def load_checks():
    path = REPO / "labs" / "ci-templates" / "checks.py"
    spec = importlib.util.spec_from_file_location("ci_templates_checks_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


checks = load_checks()


class Ctx:
    """What the checks use of the lab's context: the working copy at HEAD, no class tenant."""

    def __init__(self, wc: Path):
        self.wc = wc
        self.git = Git(wc)
        self.state = None
        self.reporter = SimpleNamespace(info=lambda *_: None)

    def pushed(self) -> str:
        return "HEAD"

    def show(self, path: str, ref: str | None = None) -> str | None:
        proc = self.git.run("show", f"{ref or 'HEAD'}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None


@pytest.fixture
def ctx(lab) -> Ctx:
    wc, remote = lab
    platform = remote.parent / f"{PLATFORM_REPOSITORY}.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(platform)], check=True)
    seed_platform(str(platform))
    return Ctx(wc)


def github(ref: str = "v1.0.0", **inputs) -> str:
    lines = "".join(f"      {k}: {v}\n" for k, v in {"tooling-source": TOOLING, **inputs}.items())
    return (
        "on: push\njobs:\n  pipeline:\n"
        f"    uses: ml-platform/{PLATFORM_REPOSITORY}/.github/workflows/ml-pipeline.yml@{ref}\n"
        f"    with:\n{lines}"
    )


def gitlab(ref: str = "v1.0.0", **inputs) -> str:
    lines = "".join(f"      {k}: {v}\n" for k, v in {"tooling-source": TOOLING, **inputs}.items())
    return (
        f"include:\n  - component: $CI_SERVER_FQDN/ml-platform/{PLATFORM_REPOSITORY}/ml-pipeline@{ref}\n"
        f"    inputs:\n{lines}"
    )


def push_callers(ctx: Ctx, github_text: str | None = None, gitlab_text: str | None = None) -> None:
    wc = ctx.wc
    if github_text is not None:
        (wc / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
        (wc / ".github" / "workflows" / "ci.yml").write_text(github_text)
    if gitlab_text is not None:
        (wc / ".gitlab-ci.yml").write_text(gitlab_text)
    git(wc, "add", "-A")
    git(wc, "commit", "-qm", "Callers")


def release(ctx: Ctx, edit_workflow, edit_component, tag: str = "v1.1.0") -> None:
    """Release ``tag`` of the platform with both templates edited (text -> text)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "platform"
        subprocess.run(["git", "clone", "-q", checks.platform(ctx), str(work)], check=True)
        for path, edit in ((checks.WORKFLOW, edit_workflow), (checks.COMPONENT, edit_component)):
            (work / path).write_text(edit((work / path).read_text()))
        git(work, "-c", "user.name=P", "-c", "user.email=p@x", "commit", "-qam", "New input")
        git(work, "tag", tag)
        git(work, "push", "-q", "origin", "HEAD:refs/heads/main", f"refs/tags/{tag}")


def add_github_input(text: str, name: str = "timeout-minutes", use: bool = True) -> str:
    text = text.replace(
        "    outputs:\n", f"      {name}:\n        type: number\n        default: 30\n    outputs:\n", 1
    )
    if use:
        text = text.replace(
            "    outputs:\n      verdict: ${{ steps.stage.outputs.verdict }}\n",
            f"    timeout-minutes: ${{{{ inputs.{name} }}}}\n    outputs:\n      verdict: ${{{{ steps.stage.outputs.verdict }}}}\n",
            1,
        )
    return text


def add_gitlab_input(text: str, name: str = "timeout", use: bool = True) -> str:
    text = text.replace("---\n", f"    {name}:\n      default: 30m\n---\n", 1)
    line = f"  timeout: $[[ inputs.{name} ]]\n"
    return text.replace(
        "  image: $[[ inputs.image ]]\n", "  image: $[[ inputs.image ]]\n" + ("" if use else "#") + line, 1
    )


# -- the callers against the template at their tag ---------------------------------------------------------
def test_good_callers_pass_both_checks(ctx):
    push_callers(ctx, github(), gitlab())
    assert checks.github_caller(ctx, "v1.0.0") == (
        True,
        ".github/workflows/ci.yml job pipeline calls the platform workflow at v1.0.0; its inputs fit what v1.0.0 declares",
    )
    ok, message = checks.gitlab_caller(ctx, "v1.0.0")
    assert ok, message


def test_an_unknown_input_fails_naming_it_and_the_tag(ctx):
    push_callers(ctx, github(**{"timeout-minutes": 20}), gitlab(timeout="20m"))
    ok, message = checks.github_caller(ctx, "v1.0.0")
    assert not ok
    assert (
        "passes the input 'timeout-minutes', which .github/workflows/ml-pipeline.yml at v1.0.0 does not declare"
        in message
    )
    assert "release a new tag" in message
    ok, message = checks.gitlab_caller(ctx, "v1.0.0")
    assert not ok and "'timeout', which templates/ml-pipeline.yml at v1.0.0 does not declare" in message


def test_a_missing_required_input_fails_naming_it(ctx):
    push_callers(
        ctx,
        github().replace(f"      tooling-source: {TOOLING}\n", "      stages: all\n"),
        gitlab().replace(f"      tooling-source: {TOOLING}\n", "      stages: all\n"),
    )
    for check in (checks.github_caller, checks.gitlab_caller):
        ok, message = check(ctx, "v1.0.0")
        assert (
            not ok and "does not pass the input 'tooling-source', which" in message and "at v1.0.0 requires" in message
        )


def test_a_value_of_the_wrong_type_fails_with_a_hint(ctx):
    push_callers(ctx, github(**{"python-version": "3.10"}), gitlab(**{"runner-tags": "ml-platform"}))
    ok, message = checks.github_caller(ctx, "v1.0.0")
    assert not ok and "'python-version' is the number 3.1" in message and "quote it" in message
    ok, message = checks.gitlab_caller(ctx, "v1.0.0")
    assert not ok and "'runner-tags' is 'ml-platform', and the input is an array" in message


def test_a_value_outside_the_options_fails():
    declared = {"size": c.Input("size", options=("small", "large"))}
    [problem] = c.input_problems({"size": "huge"}, declared, c.GITLAB, "caller", "templates/x.yml at v2")
    assert (
        problem == "caller: the input 'size' is 'huge', not one of its options in templates/x.yml at v2: small, large"
    )
    assert c.input_problems({"size": "large"}, declared, c.GITLAB, "caller", "t") == []


def test_a_stage_the_pipeline_does_not_have_fails(ctx):
    push_callers(ctx, github(stages="data-preparation,train"), gitlab())
    ok, message = checks.github_caller(ctx, "v1.0.0")
    assert not ok and "the input 'stages' names train, no stage of the pipeline" in message


def test_platform_ref_other_than_the_called_tag_fails(ctx):
    push_callers(ctx, github(**{"platform-ref": "v0.9.0"}), gitlab())
    ok, message = checks.github_caller(ctx, "v1.0.0")
    assert not ok and "passes platform-ref 'v0.9.0' but calls @v1.0.0" in message


def test_an_unpinned_tooling_source_still_fails(ctx):
    push_callers(ctx, github().replace(TOOLING, "gitops-lab"), gitlab())
    ok, message = checks.github_caller(ctx, "v1.0.0")
    assert not ok and "pin a source you control" in message


# -- the pipeline as the callers ask ----------------------------------------------------------------------
def test_the_plan_takes_the_callers_stages_and_says_what_cannot_apply_here():
    declared = c.github_inputs(__import__("yaml").safe_load((REPO / "platform" / checks.WORKFLOW).read_text()))
    call = checks.Call(
        c.GITHUB, "w", "v1.0.0", {"stages": "unit-tests", "python-version": "3.11", "tooling-source": "x"}
    )
    plan = checks.plan(call, declared)
    assert plan.stages == ("unit-tests",) and plan.candidate_env == "dev"
    assert any(note.startswith("python-version 3.11 cannot apply here") for note in plan.notes)
    variable = checks.plan(checks.Call(c.GITHUB, "w", "v1.0.0", {"stages": "${{ vars.S }}"}), declared)
    assert variable.stages is None and "ran the template's default (all)" in variable.notes[0]


def test_stages_the_caller_leaves_out_are_skipped_never_passed(ctx):
    push_callers(ctx, github(stages="unit-tests", **{"python-version": "'3.11'"}), gitlab(stages="unit-tests"))
    ok, message = checks.pipeline(ctx, "pass")
    assert ok, message
    assert "as GitHub @v1.0.0 and GitLab @v1.0.0 ask" in message  # one run for the same plan
    assert "unit-tests pass" in message
    for stage in STAGES:
        if stage != "unit-tests":
            assert f"{stage} skipped" in message and f"{stage} pass" not in message
    assert "python-version 3.11 cannot apply here" in message


def test_a_selection_that_starves_a_stage_of_its_handoff_fails(ctx):
    push_callers(ctx, github(stages="training"), gitlab(stages="training"))
    ok, message = checks.pipeline(ctx, "pass")
    assert not ok and "training fail" in message, message


def test_the_pipeline_does_not_run_for_a_caller_whose_inputs_do_not_fit(ctx):
    push_callers(ctx, github(nope=1), gitlab())
    ok, message = checks.pipeline(ctx, "pass")
    assert not ok and message.startswith("the pipeline cannot run as your callers ask:") and "'nope'" in message


# -- step 4: the release of v1.1.0 ----------------------------------------------------------------------------
def test_no_release_fails_with_how_to_tag(ctx):
    ok, message = checks.platform_input_released(ctx, "v1.1.0", "v1.0.0")
    assert not ok and "has no tag v1.1.0" in message and "git push origin main v1.1.0" in message


def test_a_release_without_a_new_input_fails(ctx):
    release(ctx, lambda t: t + "\n", lambda t: t + "\n")
    ok, message = checks.platform_input_released(ctx, "v1.1.0", "v1.0.0")
    assert not ok and "at v1.1.0 declares the same inputs as at v1.0.0" in message


def test_a_new_input_no_job_uses_fails(ctx):
    release(ctx, lambda t: add_github_input(t, use=False), add_gitlab_input)
    ok, message = checks.platform_input_released(ctx, "v1.1.0", "v1.0.0")
    assert (
        not ok and ".github/workflows/ml-pipeline.yml at v1.1.0 declares timeout-minutes but no job uses it" in message
    )


def test_a_gitlab_input_used_only_in_a_comment_is_not_used(ctx):
    release(ctx, add_github_input, lambda t: add_gitlab_input(t, use=False))
    ok, message = checks.platform_input_released(ctx, "v1.1.0", "v1.0.0")
    assert not ok and "templates/ml-pipeline.yml at v1.1.0 declares timeout but no job uses it" in message
    assert "$[[ inputs.timeout ]]" in message


def test_the_released_input_must_be_passed_by_callers_at_the_new_tag(ctx):
    release(ctx, add_github_input, add_gitlab_input)
    assert checks.platform_input_released(ctx, "v1.1.0", "v1.0.0") == (
        True,
        "v1.1.0 adds the inputs timeout-minutes, timeout, used by the jobs",
    )
    push_callers(ctx, github(), gitlab())
    ok, message = checks.github_caller(ctx, "v1.1.0", "v1.0.0")
    assert not ok and "calls the platform at v1.0.0; this step wants @v1.1.0" in message
    push_callers(ctx, github("v1.1.0"), gitlab("v1.1.0"))
    ok, message = checks.github_caller(ctx, "v1.1.0", "v1.0.0")
    assert not ok and "passes none of the inputs v1.1.0 added (timeout-minutes)" in message
    push_callers(ctx, github("v1.1.0", **{"timeout-minutes": 20}), gitlab("v1.1.0", timeout="20m"))
    assert checks.github_caller(ctx, "v1.1.0", "v1.0.0")[0]
    assert checks.gitlab_caller(ctx, "v1.1.0", "v1.0.0")[0]


def test_the_labs_own_solution_releases_an_input_the_check_accepts(ctx):
    checks.release_platform_input(ctx, "v1.1.0", "v1.0.0")
    ok, message = checks.platform_input_released(ctx, "v1.1.0", "v1.0.0")
    assert ok, message

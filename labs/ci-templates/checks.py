"""Checks of the CI-template lab: the learner's callers of the platform pipeline, resolved against the platform
repository at the tag each names, and the pipeline, run as the callers ask.

The platform repository (ml-platform-pipelines) sits beside the lab repository
on the same Git server; in a class, each learner has their own,
<learner>-ml-platform-pipelines (the lab environment's ``tenant``). The callers are
read from the pushed commit as YAML (never matched as text). A call must name the
platform's template at a released tag; the check fetches that tag from the Git
server and holds the caller's `with:` / `inputs:` against the inputs the template
declares there (`on.workflow_call.inputs`, `spec: inputs`): an unknown input, a
missing required one, a value of the wrong type or outside `options:` fails.

The pipeline then runs the stages the caller selects (its `stages` input, else
the template's default at that tag) with python -m gitops_lab.pipeline, in their
order, on a checkout of the pushed commit, handing each other ci-artifacts/ as
the jobs do; a failing stage stops the rest, a stage left out says skipped. Of the
caller's other inputs, `candidate-env` and `model-server-url` apply here; the
runner's (python version, labels, image, tooling source) cannot, and the check
says so. act and gitlab-ci-local run the callers themselves (docs/ci-platform.md).
"""

from __future__ import annotations

import os
import platform as host
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import yaml

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.platform import PLATFORM_REPOSITORY, platform_remote_beside, remote_refs
from gitops_lab.errors import GitOpsLabError
from gitops_lab.pipeline import callers as c
from gitops_lab.pipeline.stages import STAGES

WORKFLOW = ".github/workflows/ml-pipeline.yml"
COMPONENT = "templates/ml-pipeline.yml"
GITHUB_USES = re.compile(rf"^[A-Za-z0-9_.-]+/{PLATFORM_REPOSITORY}/\.github/workflows/ml-pipeline\.yml@(?P<ref>.+)$")
GITLAB_COMPONENT = re.compile(rf"^.+/{PLATFORM_REPOSITORY}/ml-pipeline@(?P<ref>.+)$")
SEEDED_TESTS = "test_server."
# Inputs that say what runs where, not what the stages do: nothing of them applies on this machine.
RUNNER_INPUTS = {"runner-labels", "runner-tags", "image", "stage", "platform-git-url", "platform-ref"}


def platform(ctx) -> str:
    """The platform repository beside the lab repository; in a class, the learner's own."""
    return platform_remote_beside(ctx.git.remote_url() or "", ctx.state.tenant if ctx.state else None)


def _refs(ctx) -> tuple[set[str], set[str]]:
    return remote_refs(platform(ctx))


def _pin_problem(ctx, ref: str, where: str, want: str) -> str | None:
    tags, branches = _refs(ctx)
    if ref in branches and ref not in tags:
        return (
            f"{where} calls the platform at branch {ref!r}: a branch moves under you, so every run may get "
            f"other templates; pin a released tag (@{want})"
        )
    if ref not in tags:
        return f"{where} calls the platform at {ref!r}, which is no tag of {platform(ctx)} (tags: {', '.join(sorted(tags)) or 'none'})"
    if ref != want:
        return f"{where} calls the platform at {ref}; this step wants @{want}"
    return None


def _tooling_problem(value, where: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{where} passes no tooling-source: the platform installs the pipeline's tooling from it (git+URL@TAG or a wheel)"
    # A CI variable (`${{ vars.X }}`, `$X`) is set in the project's settings, where the pin then lives.
    if not (value.endswith(".whl") or re.search(r"@[^/@]+$", value) or value.startswith(("${{", "$"))):
        return (
            f"{where} passes tooling-source {value!r}, a name a public index may serve anyone's package for; "
            "pin a source you control: git+URL@TAG or a wheel"
        )
    return None


def _yaml(ctx, path: str, ref: str):
    text = ctx.show(path, ref)
    if text is None:
        return None, f"{path} is not in what you pushed"
    try:
        return yaml.safe_load(text), None
    except yaml.YAMLError as error:
        return None, f"{path} is not valid YAML ({getattr(error, 'problem', error)})"


# -- the callers ---------------------------------------------------------------------------------------------
@dataclass
class Call:
    """One call of the platform's template: GitHub (a job's `uses:`) or GitLab (an `include:` entry)."""

    kind: str
    where: str
    ref: str
    inputs: Any = field(default_factory=dict)

    @property
    def template(self) -> str:
        return f"{WORKFLOW if self.kind == c.GITHUB else COMPONENT} at {self.ref}"


def github_calls(ctx) -> tuple[list[Call], str | None]:
    """The jobs of .github/workflows/*.yml that call the platform's reusable workflow, or why none can be read."""
    ref = ctx.pushed()
    folder = ".github/workflows"
    names = [
        n
        for n in ctx.git.run("ls-tree", "--name-only", f"{ref}:{folder}", check=False).stdout.split()
        if n.endswith((".yml", ".yaml"))
    ]
    calls = []
    for name in names:
        doc, problem = _yaml(ctx, f"{folder}/{name}", ref)
        if problem:
            return [], problem
        jobs = doc.get("jobs") if isinstance(doc, dict) else None
        for job_id, job in (jobs or {}).items() if isinstance(jobs, dict) else ():
            uses = job.get("uses") if isinstance(job, dict) else None
            if isinstance(uses, str) and (match := GITHUB_USES.match(uses)):
                calls.append(Call(c.GITHUB, f"{folder}/{name} job {job_id}", match["ref"], job.get("with")))
    if not calls:
        return [], (
            f"no workflow under {folder} calls OWNER/{PLATFORM_REPOSITORY}/{WORKFLOW}@TAG "
            "(a job with `uses:`, not a step)"
        )
    return calls, None


def gitlab_calls(ctx) -> tuple[list[Call], str | None]:
    """The `include:` entries of .gitlab-ci.yml naming the platform's component (or its file by project)."""
    doc, problem = _yaml(ctx, ".gitlab-ci.yml", ctx.pushed())
    if problem:
        return [], problem
    include = doc.get("include") if isinstance(doc, dict) else None
    entries = include if isinstance(include, list) else [include] if include else []
    calls = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("component"), str) and (match := GITLAB_COMPONENT.match(entry["component"])):
            calls.append(Call(c.GITLAB, ".gitlab-ci.yml include: component", match["ref"], entry.get("inputs")))
        elif (
            str(entry.get("project", "")).rstrip("/").endswith(f"/{PLATFORM_REPOSITORY}")
            and str(entry.get("file", "")).lstrip("/") == COMPONENT
        ):
            ref = str(entry.get("ref", "HEAD"))
            calls.append(Call(c.GITLAB, ".gitlab-ci.yml include: project", ref, entry.get("inputs")))
    if not calls:
        return [], (
            f".gitlab-ci.yml includes no `component: $CI_SERVER_FQDN/GROUP/{PLATFORM_REPOSITORY}/ml-pipeline@TAG` "
            f"(or `project: GROUP/{PLATFORM_REPOSITORY}` with `file: {COMPONENT}` and `ref: TAG`)"
        )
    return calls, None


# -- the platform's templates at a tag ----------------------------------------------------------------------
@dataclass
class Templates:
    """The platform's two templates at one tag: what each declares as inputs, and the text where inputs are used."""

    tag: str
    declared: dict[str, dict[str, c.Input]]
    body: dict[str, str]


def templates_at(ctx, *tags: str) -> dict[str, Templates]:
    """Fetch ``tags`` from the platform repository and read both templates at each."""
    found = {}
    with tempfile.TemporaryDirectory(prefix="gitops-lab-platform-") as tmp:
        git = Git(tmp)
        git.run("init", "--quiet", "--bare")
        git.run("fetch", "--quiet", "--depth", "1", platform(ctx), *(f"refs/tags/{t}:refs/tags/{t}" for t in tags))
        for tag in tags:
            workflow = _load(git, tag, WORKFLOW)
            header, body = c.component_documents(git.run("show", f"{tag}:{COMPONENT}", check=False).stdout)
            found[tag] = Templates(
                tag,
                {c.GITHUB: c.github_inputs(workflow), c.GITLAB: c.gitlab_inputs(header)},
                {c.GITHUB: c.github_body(workflow), c.GITLAB: body},
            )
    return found


def _load(git: Git, tag: str, path: str) -> Any:
    try:
        return yaml.safe_load(git.run("show", f"{tag}:{path}", check=False).stdout)
    except yaml.YAMLError as error:
        raise GitOpsLabError(
            f"{path} at {tag} of the platform repository is not valid YAML ({getattr(error, 'problem', error)})",
            fix=f"fix it in your clone of {PLATFORM_REPOSITORY} and release a new tag",
        ) from error


def _stages_problem(call: Call, declared: dict[str, c.Input]) -> str | None:
    value = _effective(call, declared).get("stages")
    if not isinstance(value, str) or c.is_variable(value, call.kind):
        return None
    unknown = [s for s in (p.strip() for p in value.split(",")) if s and s != "all" and s not in STAGES]
    if unknown:
        return f"{call.where}: the input 'stages' names {', '.join(unknown)}, no stage of the pipeline ({', '.join(STAGES)})"
    return None


def call_problems(call: Call, templates: Templates) -> list[str]:
    """What is wrong with ``call``'s inputs against the template at its tag (``templates``)."""
    declared = templates.declared[call.kind]
    problems = c.input_problems(call.inputs, declared, call.kind, call.where, call.template)
    if problems:
        return problems
    stages = _stages_problem(call, declared)
    given = call.inputs or {}
    pinned = given.get("platform-ref")
    if stages:
        return [stages]
    if (
        call.kind == c.GITHUB
        and isinstance(pinned, str)
        and not c.is_variable(pinned, call.kind)
        and pinned != call.ref
    ):
        return [f"{call.where} passes platform-ref {pinned!r} but calls @{call.ref}: keep them equal"]
    return []


def _check_callers(ctx, calls: list[Call], problem: str | None, tag: str, since: str | None, name: str):
    if problem:
        return False, problem
    try:
        for call in calls:
            pin = _pin_problem(ctx, call.ref, call.where, tag)
            if pin:
                return False, pin
        wanted = (tag, since) if since else (tag,)
        templates = templates_at(ctx, *wanted)
    except GitOpsLabError as error:
        return False, error.one_line()
    for call in calls:
        problems = call_problems(call, templates[tag])
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            return False, problems[0] + more
        tooling = _tooling_problem((call.inputs or {}).get("tooling-source"), call.where)
        if tooling:
            return False, tooling
        if since:
            added = set(templates[tag].declared[call.kind]) - set(templates[since].declared[call.kind])
            if added and not added & set(call.inputs or {}):
                return False, (
                    f"{call.where} calls @{tag} but passes none of the inputs {tag} added "
                    f"({', '.join(sorted(added))}): pass the one you released"
                )
    return True, f"{calls[0].where} calls {name} at {tag}; its inputs fit what {tag} declares"


def github_caller(ctx, tag: str = "v1.0.0", since: str | None = None):
    """A workflow under .github/workflows calls the platform's reusable workflow at ``tag``, with inputs it declares
    there (and, with ``since``, one of those it added since)."""
    calls, problem = github_calls(ctx)
    return _check_callers(ctx, calls, problem, tag, since, "the platform workflow")


def gitlab_caller(ctx, tag: str = "v1.0.0", since: str | None = None):
    """.gitlab-ci.yml includes the platform's component (or its file by project) at ``tag``, with inputs it
    declares there (and, with ``since``, one of those it added since)."""
    calls, problem = gitlab_calls(ctx)
    return _check_callers(ctx, calls, problem, tag, since, "the platform component")


# -- the pipeline, as the callers ask --------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How one caller's pipeline runs here: the stages it selects (None: all), its candidate, its model server."""

    stages: tuple[str, ...] | None
    candidate_env: str
    model_server_url: str | None
    notes: tuple[str, ...]


def _effective(call: Call, declared: dict[str, c.Input]) -> dict[str, Any]:
    values = {name: spec.default for name, spec in declared.items()}
    return {**values, **(call.inputs if isinstance(call.inputs, dict) else {})}


def plan(call: Call, declared: dict[str, c.Input]) -> Plan:
    """What ``call`` asks of the pipeline that this machine can honour, and what it cannot, in words."""
    values = _effective(call, declared)
    given = call.inputs if isinstance(call.inputs, dict) else {}
    notes = []
    stages: tuple[str, ...] | None = None
    selected = values.get("stages")
    if isinstance(selected, str) and c.is_variable(selected, call.kind):
        default = declared["stages"].default if "stages" in declared else "all"
        notes.append(f"stages {selected} is set in CI only: ran the template's default ({default})")
        selected = default
    if isinstance(selected, str):
        names = [s.strip() for s in selected.split(",") if s.strip()]
        stages = None if "all" in names else tuple(names)
    candidate = values.get("candidate-env") or "dev"
    if c.is_variable(candidate, call.kind):
        notes.append(f"candidate-env {candidate} is set in CI only: ran dev")
        candidate = "dev"
    server = values.get("model-server-url") or None
    if server and c.is_variable(server, call.kind):
        notes.append(f"model-server-url {server} is set in CI only: release ran without it")
        server = None
    if "python-version" in given:
        notes.append(
            f"python-version {given['python-version']} cannot apply here: the stages ran on this machine's "
            f"Python {host.python_version()}"
        )
    if "tooling-source" in given:
        notes.append("tooling-source does not apply here: the installed gitops-lab ran the stages")
    elsewhere = sorted(set(given) & RUNNER_INPUTS)
    if elsewhere:
        notes.append(f"{', '.join(elsewhere)} choose{'s' if len(elsewhere) == 1 else ''} the CI runner, not used here")
    return Plan(stages, str(candidate), server, tuple(notes))


def run_pipeline(ctx, selected: Plan | None = None, invoke=None) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(stage, verdict, closing line) of each stage on a checkout of the pushed commit, in order, stopping at a
    failure (a stage ``selected`` leaves out is skipped, not run); and the names of the unit tests the
    unit-tests stage ran and passed. ``invoke``: run only these stages (and report nothing of the rest)."""
    ref = ctx.pushed()
    selected = selected or Plan(None, "dev", None, ())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("GITOPS_LAB_KUBECONFIG", None)
    env.pop("MODEL_SERVER_URL", None)
    if selected.model_server_url:
        env["MODEL_SERVER_URL"] = selected.model_server_url
    ran: list[tuple[str, str, str]] = []
    passed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gitops-lab-ci-") as tmp:
        ctx.git.run("worktree", "add", "--detach", "--quiet", tmp, ref)
        try:
            for stage in invoke or STAGES:
                if selected.stages is not None and stage not in selected.stages:
                    ran.append((stage, "skipped", f"STAGE {stage}: skipped (not among the stages the caller selects)"))
                    continue
                proc = subprocess.run(
                    [sys.executable, "-m", "gitops_lab.pipeline", stage, "--candidate-env", selected.candidate_env],
                    cwd=tmp,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
                closing = next(
                    (line for line in reversed(lines) if line.startswith("STAGE ")), lines[-1] if lines else ""
                )
                verdict = "fail" if proc.returncode else ("skipped" if ": skipped" in closing else "pass")
                ran.append((stage, verdict, closing))
                if proc.returncode:
                    break
            report = Path(tmp) / "ci-artifacts" / "junit" / "unit-tests.xml"
            if report.is_file():
                cases = ET.parse(report).getroot().findall("testcase")
                passed = [case.get("name", "") for case in cases if not list(case)]
        finally:
            ctx.git.run("worktree", "remove", "--force", tmp, check=False)
    return ran, passed


def plans(ctx) -> tuple[list[tuple[Plan, list[str], list[str]]], str | None]:
    """Each distinct run the pushed callers ask for (stages, candidate, model server), with the callers that ask
    for it and what of theirs cannot apply here; or a problem."""
    github, problem = github_calls(ctx)
    gitlab, problem2 = gitlab_calls(ctx)
    calls = github + gitlab
    if not calls:
        return [], problem or problem2
    try:
        templates = templates_at(ctx, *sorted({call.ref for call in calls}))
    except GitOpsLabError as error:
        return [], error.one_line()
    found: dict[tuple, tuple[Plan, list[str], list[str]]] = {}
    for call in calls:
        problems = call_problems(call, templates[call.ref])
        if problems:
            return [], problems[0]
        asked = plan(call, templates[call.ref].declared[call.kind])
        _, askers, notes = found.setdefault(
            (asked.stages, asked.candidate_env, asked.model_server_url), (asked, [], [])
        )
        askers.append(f"{'GitHub' if call.kind == c.GITHUB else 'GitLab'} @{call.ref}")
        notes += [note for note in asked.notes if note not in notes]
    return list(found.values()), None


def pipeline(ctx, expect: str):
    """The pipeline, run as each pushed caller asks, passes (``expect: pass``: every stage it selects passes, the
    rest skipped) or stops at data validation (``expect: blocked-at-data``)."""
    found, problem = plans(ctx)
    if problem:
        return False, f"the pipeline cannot run as your callers ask: {problem}"
    ok, lines = True, []
    for selected, askers, notes in found:
        ran, _ = run_pipeline(ctx, selected)
        shown = ", ".join(f"{stage} {verdict}" for stage, verdict, _ in ran)
        failed = [(stage, last) for stage, verdict, last in ran if verdict == "fail"]
        said = f" [{'; '.join(notes)}]" if notes else ""
        who = f"as {' and '.join(askers)} ask{'s' if len(askers) == 1 else ''}"
        if expect == "pass":
            good = not failed and len(ran) == len(STAGES)
            lines.append(f"pipeline {who}: {shown}" + (f" ({failed[0][1]})" if failed else "") + said)
        else:
            good = bool(failed) and failed[0][0] == "data-validation"
            lines.append(
                f"pipeline {who}: {shown}; "
                + (f"data validation blocked it: {failed[0][1]}" if good else "expected it to stop at data-validation")
                + said
            )
        ok = ok and good
    return ok, "; ".join(lines)


def own_unit_test(ctx):
    """The unit-test stage runs a test of the learner's own (beside the seeded ci/tests/test_server.py), and it passes."""
    ran, passed = run_pipeline(ctx, invoke=["unit-tests"])
    [(_, verdict, last)] = ran
    if verdict != "pass":
        return False, f"the unit-tests stage fails: {last}"
    mine = [name for name in passed if not name.startswith(SEEDED_TESTS)]
    if not mine:
        return False, (
            "the unit-tests stage ran only the seeded tests (test_server.*); add a test_*.py of your own "
            "under ci/tests, commit and push it"
        )
    return True, f"the unit-tests stage runs your test{'s' if len(mine) > 1 else ''}: {', '.join(mine)}"


def platform_input_released(ctx, tag: str = "v1.1.0", since: str = "v1.0.0"):
    """The platform repository has ``tag``, whose templates each declare an input ``since`` did not, and use it
    in their jobs (`${{ inputs.NAME }}`, `$[[ inputs.NAME ]]`)."""
    try:
        tags, _ = _refs(ctx)
        if tag not in tags:
            return False, (
                f"{platform(ctx)} has no tag {tag} (tags: {', '.join(sorted(tags))}); add the input, "
                f"commit, `git tag -a {tag} -m ...` and `git push origin main {tag}` in your clone of it"
            )
        found = templates_at(ctx, since, tag)
    except GitOpsLabError as error:
        return False, error.one_line()
    then, now = found[since], found[tag]
    added_all = []
    for kind, path, use in ((c.GITHUB, WORKFLOW, "${{ inputs.NAME }}"), (c.GITLAB, COMPONENT, "$[[ inputs.NAME ]]")):
        added = set(now.declared[kind]) - set(then.declared[kind])
        if not added:
            return False, f"{path} at {tag} declares the same inputs as at {since}: add one (and release {tag} again)"
        unused = sorted(added - c.used_inputs(now.body[kind], added, kind))
        if unused:
            return False, (
                f"{path} at {tag} declares {', '.join(unused)} but no job uses it: an input nothing reads "
                f"changes nothing; use it as {use.replace('NAME', unused[0])} in a job, then release again"
            )
        added_all += sorted(added)
    return True, f"{tag} adds the input{'s' if len(added_all) > 1 else ''} {', '.join(added_all)}, used by the jobs"


def release_platform_input(ctx, tag: str = "v1.1.0", since: str = "v1.0.0") -> None:
    """The solution of the release step: add a `timeout-minutes` input to both templates, tag ``tag``, push.

    Done in a clone of the platform repository; nothing happens when ``tag`` is already released.
    """
    from gitops_lab.adapters.repo.platform import PLATFORM_AUTHOR

    if tag in _refs(ctx)[0]:
        ctx.reporter.info(f"{platform(ctx)} already has {tag}")
        return
    with tempfile.TemporaryDirectory(prefix="gitops-lab-platform-") as tmp:
        work = Path(tmp) / PLATFORM_REPOSITORY
        Git(tmp).run("clone", "--quiet", "--branch", since, platform(ctx), str(work))
        git = Git(work)
        for key, value in PLATFORM_AUTHOR.items():
            git.run("config", "--local", key, value)
        workflow = work / WORKFLOW
        text = workflow.read_text(encoding="utf-8")
        text = text.replace(
            "    outputs:\n",
            "      timeout-minutes:\n        description: How long one stage may run.\n        type: number\n"
            "        default: 30\n    outputs:\n",
            1,
        )
        text = text.replace(
            "    runs-on: ${{ fromJSON(needs.runner-config.outputs.runs-on) }}\n",
            "    runs-on: ${{ fromJSON(needs.runner-config.outputs.runs-on) }}\n"
            "    timeout-minutes: ${{ inputs.timeout-minutes }}\n",
        )
        # runners.yml is read at platform-ref: a release keeps its default equal to its own tag.
        text = text.replace(f"        default: {since}\n", f"        default: {tag}\n")
        workflow.write_text(text, encoding="utf-8")
        component = work / COMPONENT
        text = component.read_text(encoding="utf-8")
        text = text.replace(
            "---\n", "    timeout:\n      description: How long one stage may run.\n      default: 30m\n---\n", 1
        )
        text = text.replace(
            "  image: $[[ inputs.image ]]\n", "  image: $[[ inputs.image ]]\n  timeout: $[[ inputs.timeout ]]\n", 1
        )
        component.write_text(text, encoding="utf-8")
        git.run("commit", "--quiet", "--all", "--message", "Add a per-stage timeout input")
        git.run("tag", "--annotate", tag, "--message", f"Release {tag}")
        git.run("push", "--quiet", "origin", "HEAD:refs/heads/main", f"refs/tags/{tag}")

"""Checks of the CI-template lab: the learner's callers of the platform pipeline, parsed, and the pipeline, run.

The platform repository (ml-platform-pipelines) sits beside the lab repository
on the same Git server; in a class, each learner has their own,
<learner>-ml-platform-pipelines (the lab environment's ``tenant``). The callers are read from the pushed commit as YAML
(never matched as text); a call must name the platform's template at a released
tag. The pipeline runs the stages the platform's templates run
(python -m gitops_lab.pipeline), in their order, on a checkout of the pushed commit,
handing each other ci-artifacts/ as the jobs do; a failing stage stops the rest.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree as ET

import yaml

from gitops_lab.adapters.repo.platform import PLATFORM_REPOSITORY, platform_remote_beside, remote_refs
from gitops_lab.errors import GitOpsLabError
from gitops_lab.pipeline.stages import STAGES

WORKFLOW = ".github/workflows/ml-pipeline.yml"
COMPONENT = "templates/ml-pipeline.yml"
GITHUB_USES = re.compile(rf"^[A-Za-z0-9_.-]+/{PLATFORM_REPOSITORY}/\.github/workflows/ml-pipeline\.yml@(?P<ref>.+)$")
GITLAB_COMPONENT = re.compile(rf"^.+/{PLATFORM_REPOSITORY}/ml-pipeline@(?P<ref>.+)$")
SEEDED_TESTS = "test_server."


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


def github_caller(ctx, tag: str = "v1.0.0"):
    """A workflow under .github/workflows calls the platform's reusable workflow at ``tag``, with a pinned tooling-source."""
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
            return False, problem
        jobs = doc.get("jobs") if isinstance(doc, dict) else None
        for job_id, job in (jobs or {}).items() if isinstance(jobs, dict) else ():
            uses = job.get("uses") if isinstance(job, dict) else None
            if isinstance(uses, str) and (match := GITHUB_USES.match(uses)):
                calls.append((f"{folder}/{name} job {job_id}", match["ref"], job.get("with") or {}))
    if not calls:
        return False, (
            f"no workflow under {folder} calls OWNER/{PLATFORM_REPOSITORY}/{WORKFLOW}@TAG "
            "(a job with `uses:`, not a step)"
        )
    for where, pinned, inputs in calls:
        problem = _pin_problem(ctx, pinned, where, tag) or _tooling_problem(inputs.get("tooling-source"), where)
        if problem:
            return False, problem
    return True, f"{calls[0][0]} calls the platform workflow at {tag}"


def gitlab_caller(ctx, tag: str = "v1.0.0"):
    """.gitlab-ci.yml includes the platform's component (or its template by project) at ``tag``, with a pinned tooling-source."""
    ref = ctx.pushed()
    doc, problem = _yaml(ctx, ".gitlab-ci.yml", ref)
    if problem:
        return False, problem
    include = doc.get("include") if isinstance(doc, dict) else None
    entries = include if isinstance(include, list) else [include] if include else []
    calls = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("component"), str) and (match := GITLAB_COMPONENT.match(entry["component"])):
            calls.append(("include: component", match["ref"], entry.get("inputs") or {}))
        elif (
            str(entry.get("project", "")).rstrip("/").endswith(f"/{PLATFORM_REPOSITORY}")
            and str(entry.get("file", "")).lstrip("/") == COMPONENT
        ):
            calls.append(("include: project", str(entry.get("ref", "HEAD")), entry.get("inputs") or {}))
    if not calls:
        return False, (
            f".gitlab-ci.yml includes no `component: $CI_SERVER_FQDN/GROUP/{PLATFORM_REPOSITORY}/ml-pipeline@TAG` "
            f"(or `project: GROUP/{PLATFORM_REPOSITORY}` with `file: {COMPONENT}` and `ref: TAG`)"
        )
    for where, pinned, inputs in calls:
        problem = _pin_problem(ctx, pinned, f".gitlab-ci.yml {where}", tag) or _tooling_problem(
            inputs.get("tooling-source"), f".gitlab-ci.yml {where}"
        )
        if problem:
            return False, problem
    return True, f".gitlab-ci.yml includes the platform component at {tag}"


def run_pipeline(ctx, stages=None) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(stage, verdict, closing line) of each stage run on a checkout of the pushed commit, stopping at a failure;
    and the names of the unit tests the unit-tests stage ran and passed."""
    ref = ctx.pushed()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("GITOPS_LAB_KUBECONFIG", None)
    env.pop("MODEL_SERVER_URL", None)
    ran: list[tuple[str, str, str]] = []
    passed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gitops-lab-ci-") as tmp:
        ctx.git.run("worktree", "add", "--detach", "--quiet", tmp, ref)
        try:
            for stage in stages or STAGES:
                proc = subprocess.run(
                    [sys.executable, "-m", "gitops_lab.pipeline", stage],
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
                passed = [c.get("name", "") for c in cases if not list(c)]
        finally:
            ctx.git.run("worktree", "remove", "--force", tmp, check=False)
    return ran, passed


def pipeline(ctx, expect: str):
    ran, _ = run_pipeline(ctx)
    shown = ", ".join(f"{stage} {verdict}" for stage, verdict, _ in ran)
    failed = [(stage, last) for stage, verdict, last in ran if verdict == "fail"]
    if expect == "pass":
        ok = not failed and len(ran) == len(STAGES)
        return ok, f"pipeline: {shown}" + (f" ({failed[0][1]})" if failed else "")
    stopped = [stage for stage, _, _ in ran] == ["data-preparation", "data-validation"] and failed
    return bool(stopped), (
        f"pipeline: {shown}; data validation blocked it: {failed[0][1]}"
        if stopped
        else f"pipeline: {shown}; expected it to stop at data-validation"
    )


def own_unit_test(ctx):
    """The unit-test stage runs a test of the learner's own (beside the seeded ci/tests/test_server.py), and it passes."""
    ran, passed = run_pipeline(ctx, ["unit-tests"])
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


def _inputs(ctx, tag: str) -> tuple[set[str], set[str]]:
    """The input names of the platform's GitHub workflow and GitLab component at ``tag``."""
    with tempfile.TemporaryDirectory(prefix="gitops-lab-platform-") as tmp:
        from gitops_lab.adapters.repo.git import Git

        git = Git(tmp)
        git.run("init", "--quiet", "--bare")
        git.run("fetch", "--quiet", "--depth", "1", platform(ctx), f"refs/tags/{tag}:refs/tags/{tag}")
        workflow = yaml.safe_load(git.run("show", f"{tag}:{WORKFLOW}").stdout) or {}
        header = next(yaml.safe_load_all(git.run("show", f"{tag}:{COMPONENT}").stdout)) or {}
    on = workflow.get("on", workflow.get(True)) or {}
    github = set(((on.get("workflow_call") or {}).get("inputs") or {}))
    gitlab = set(((header.get("spec") or {}).get("inputs") or {}))
    return github, gitlab


def platform_input_released(ctx, tag: str = "v1.1.0", since: str = "v1.0.0"):
    """The platform repository has ``tag``, whose templates take an input ``since`` did not."""
    try:
        tags, _ = _refs(ctx)
        if tag not in tags:
            return False, (
                f"{platform(ctx)} has no tag {tag} (tags: {', '.join(sorted(tags))}); add the input, "
                f"commit, `git tag -a {tag} -m ...` and `git push origin main {tag}` in your clone of it"
            )
        github_then, gitlab_then = _inputs(ctx, since)
        github_now, gitlab_now = _inputs(ctx, tag)
    except GitOpsLabError as error:
        return False, error.one_line()
    added = sorted((github_now - github_then) | (gitlab_now - gitlab_then))
    if not added:
        return False, f"{tag} takes the same inputs as {since}: add an input to {WORKFLOW} or {COMPONENT}"
    return True, f"{tag} adds the input{'s' if len(added) > 1 else ''} {', '.join(added)}"


def release_platform_input(ctx, tag: str = "v1.1.0", since: str = "v1.0.0") -> None:
    """The solution of the release step: add a `timeout-minutes` input to both templates, tag ``tag``, push.

    Done in a clone of the platform repository; nothing happens when ``tag`` is already released.
    """
    from gitops_lab.adapters.repo.git import Git
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

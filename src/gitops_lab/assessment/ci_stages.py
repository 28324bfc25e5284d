"""The stages of the learner's pipeline: the platform pipeline's, and any job of the repository's own.

The learner's pipeline calls the platform repository's templates
(ml-platform-pipelines: a reusable GitHub workflow, a GitLab CI/CD component),
so its stages are the platform's. They are read from the reusable workflow
as this gitops-lab ships it, the copy the seed publishes as v1.0.0: the stage
verdicts it declares as outputs (``on.workflow_call.outputs``), in the order the
stages run. Its jobs and the GitLab component's ``ml-pipeline-<stage>`` jobs
have the same names, and tests/unit/workflows/test_pipeline_stages.py keeps
both equal to what ``python -m gitops_lab.pipeline STAGE`` runs.

Why the template and not the pipeline module's stage list: the template is
what the learner's caller calls and what their CI shows as job names, and the
module (gitops_lab.pipeline) is a neighbour of this package on the layer
table, which it may not import. Why the shipped copy and not the platform
repository at the tag the caller pins: the check reads a folder or one commit
(a reviewer's ``--ref``, a class report), offline, without the lab's Git
server; the pipeline-design lab starts from the seed, which has no caller yet;
and a release of the platform adds inputs, not stages (the CI-template lab's
v1.1.0).

A job the learner adds in their own repository is a stage of their pipeline
too: a job of a GitHub Actions workflow under .github/workflows (a job that
only calls a reusable workflow, ``uses:``, is a caller, not a stage), or of a
GitLab CI file (.gitlab-ci.yml and the files it includes locally).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitops_lab.adapters.repo.platform import FIRST_RELEASE, PLATFORM_REPOSITORY
from gitops_lab.assessment.repo_files import RepoFiles
from gitops_lab.resources import data_dir

GITHUB_FOLDER = ".github/workflows"
GITLAB_ROOT = ".gitlab-ci.yml"
#: The platform's reusable workflow, in its repository (and in the shipped copy of it).
PLATFORM_WORKFLOW = ".github/workflows/ml-pipeline.yml"
#: How the stages' source is named in messages: the platform repository at the release the seed publishes.
PLATFORM = f"{PLATFORM_REPOSITORY} {FIRST_RELEASE}"
_YAML = (".yml", ".yaml")
#: Top-level keys of a GitLab CI file that are settings, not jobs.
_GITLAB_KEYWORDS = frozenset(
    {
        "default",
        "include",
        "stages",
        "variables",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
        "spec",
        "types",
    }
)


@dataclass
class PipelineStages:
    """Each stage (job) name with the template files that define it, and the templates that could not be read."""

    stages: dict[str, list[str]] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, template: str) -> None:
        self.stages.setdefault(name, [])
        if template not in self.stages[name]:
            self.stages[name].append(template)


def _documents(text: str, path: str, found: PipelineStages) -> list[Any]:
    import yaml

    try:
        # A GitLab CI/CD component has a `spec:` document, then `---`, then its jobs.
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        found.problems.append(
            f"{path}{f':{mark.line + 1}' if mark else ''} is not valid YAML ({getattr(error, 'problem', error)}), "
            "so its stages cannot be read"
        )
        return []


def _github(files: RepoFiles, path: str, found: PipelineStages) -> None:
    text = files.read(path)
    if text is None:
        return
    found.templates.append(path)
    for doc in _documents(text, path, found):
        jobs = doc.get("jobs") if isinstance(doc, dict) else None
        for name, job in (jobs or {}).items() if isinstance(jobs, dict) else ():
            if isinstance(job, dict) and "uses" not in job:
                found.add(str(name), path)


def _gitlab(files: RepoFiles, path: str, found: PipelineStages, seen: set[str]) -> None:
    if path in seen:
        return
    seen.add(path)
    text = files.read(path)
    if text is None:
        return
    found.templates.append(path)
    for doc in _documents(text, path, found):
        if not isinstance(doc, dict):
            continue
        for name, job in doc.items():
            name = str(name)
            if name in _GITLAB_KEYWORDS or name.startswith(".") or not isinstance(job, dict):
                continue
            if {"script", "trigger", "extends", "stage"} & set(job):
                found.add(name, path)
        for local in _local_includes(doc.get("include")):
            _gitlab(files, local, found, seen)


def _local_includes(include: Any) -> list[str]:
    """The repository files an `include:` names (`local:` entries, or plain paths)."""
    entries = include if isinstance(include, list) else [include] if include else []
    found = []
    for entry in entries:
        local = entry.get("local") if isinstance(entry, dict) else entry if isinstance(entry, str) else None
        if isinstance(local, str) and "://" not in local:
            found.append(local.lstrip("/"))
    return found


def platform_stages() -> list[str]:
    """The platform pipeline's stages, in the order they run: the outputs its reusable workflow declares."""
    import yaml

    workflow = yaml.safe_load((data_dir("platform") / PLATFORM_WORKFLOW).read_text(encoding="utf-8"))
    # YAML 1.1 reads a bare `on:` key as True.
    on = workflow.get("on", workflow.get(True))
    return [str(name) for name in on["workflow_call"]["outputs"]]


def pipeline_stages(files: RepoFiles) -> PipelineStages:
    """The platform's stages, then every job of the repository's own pipeline files, in the order they list them."""
    found = PipelineStages(templates=[PLATFORM])
    for name in platform_stages():
        found.add(name, PLATFORM)
    for name in files.names(GITHUB_FOLDER):
        if name.endswith(_YAML):
            _github(files, f"{GITHUB_FOLDER}/{name}", found)
    _gitlab(files, GITLAB_ROOT, found, set())
    return found

"""The stages the lab repository's pipeline templates define, read from the templates themselves.

A stage is a job: a job id of a GitHub Actions workflow under .github/workflows
(a job that only calls a reusable workflow, `uses:`, is a caller, not a stage),
or a job of a GitLab CI file (.gitlab-ci.yml, the files it includes locally,
and ci/gitlab/*.yml). Both templates the repository ships name their jobs the
same, so a stage has one name in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitops_lab.assessment.repo_files import RepoFiles

GITHUB_FOLDER = ".github/workflows"
GITLAB_ROOT = ".gitlab-ci.yml"
GITLAB_FOLDER = "ci/gitlab"
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


def pipeline_stages(files: RepoFiles) -> PipelineStages:
    """Every stage of every pipeline template in the repository, in the order the templates list them."""
    found = PipelineStages()
    for name in files.names(GITHUB_FOLDER):
        if name.endswith(_YAML):
            _github(files, f"{GITHUB_FOLDER}/{name}", found)
    seen: set[str] = set()
    _gitlab(files, GITLAB_ROOT, found, seen)
    for name in files.names(GITLAB_FOLDER):
        if name.endswith(_YAML):
            _gitlab(files, f"{GITLAB_FOLDER}/{name}", found, seen)
    return found

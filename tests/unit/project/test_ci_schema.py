"""The GitLab component and the GitLab callers, validated against GitLab's CI JSON schema.

The schema is the copy check-jsonschema (a test dependency, pinned by its
version in the environment) vendors from SchemaStore, which publishes GitLab's
own app/assets/javascripts/editor/schema/ci.json as gitlab-ci.json; its SHA-256
is printed on failure, so a report names the exact schema.

GitLab validates a component after it fills in the inputs, so the test does the
same: every `$[[ inputs.NAME ]]` becomes the input's default (a required input
gets a sample value), then each YAML document is validated on its own.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re

import pytest
import yaml

from helpers.paths import REPO

jsonschema = pytest.importorskip("jsonschema")

REPO_ROOT = REPO
COMPONENT = REPO_ROOT / "platform" / "templates" / "ml-pipeline.yml"
SAMPLE = {"tooling-source": "git+https://git.example.com/tools/gitops-lab.git@v0.1.0"}


def schema() -> tuple[dict, str]:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "gitlab-ci.json"
    data = vendored.read_bytes()
    return json.loads(data), hashlib.sha256(data).hexdigest()[:12]


def interpolate(text: str) -> str:
    """The component as GitLab sees it after `include: component` with default inputs."""
    spec = next(yaml.safe_load_all(text))["spec"]["inputs"]
    values = {name: SAMPLE.get(name, spec[name].get("default")) for name in spec}

    def fill(match: re.Match) -> str:
        value = values[match.group(1)]
        return json.dumps(value) if isinstance(value, list) else str(value)

    return re.sub(r"\$\[\[\s*inputs\.([a-z0-9_-]+)\s*\]\]", fill, text)


def problems(document: dict) -> list[str]:
    data, digest = schema()
    validator = jsonschema.Draft7Validator(data)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message} (schema gitlab-ci.json {digest})"
        for e in validator.iter_errors(document)
    ]


def test_the_component_and_its_header_follow_gitlabs_ci_schema():
    text = COMPONENT.read_text()
    header, jobs = yaml.safe_load_all(interpolate(text))
    assert problems(header) == []
    assert problems(jobs) == []


def test_the_schema_check_catches_a_misspelt_job_keyword():
    text = COMPONENT.read_text().replace("  script:\n", "  scirpt:\n", 1)
    _, jobs = yaml.safe_load_all(interpolate(text))
    assert problems(jobs), "a job with `scirpt:` passed the schema"


def gitlab_callers() -> list[tuple[str, str]]:
    """(where, text) of every GitLab caller this project ships: the CI-template lab's solutions."""
    found = []
    lab = yaml.safe_load((REPO_ROOT / "labs" / "ci-templates" / "lab.yaml").read_text())
    for step in lab["steps"]:
        for action in step.get("solve") or []:
            commit = action.get("commit_file") or {}
            if commit.get("path") == ".gitlab-ci.yml":
                found.append((f"labs/ci-templates/lab.yaml step {step['id']}", commit["content"]))
    return found


def test_the_gitlab_callers_follow_gitlabs_ci_schema():
    callers = gitlab_callers()
    assert len(callers) >= 2
    for where, text in callers:
        assert problems(yaml.safe_load(text)) == [], where

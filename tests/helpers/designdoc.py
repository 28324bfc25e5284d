"""The pipeline-design lab's document, as a learner writes it: the agreeing text and the push of it."""

from __future__ import annotations

from pathlib import Path

from helpers.gitutil import git

from gitops_lab.assessment.design_doc import DOC_PATH
from gitops_lab.labs.loader import load_lab
from gitops_lab.resources import labs_dir

#: The pipeline-design lab's solution: a document that agrees with the seeded repository.
AGREEING = load_lab(labs_dir() / "pipeline-design").steps[0].solve[0].params["content"]


def push_design(wc: Path, text: str = AGREEING, push: bool = True) -> str:
    """What a learner does: write the document, commit, push."""
    (wc / DOC_PATH).write_text(text, encoding="utf-8")
    git(wc, "commit", "-qam", "Write the pipeline design document")
    if push:
        git(wc, "push", "-q", "origin", "HEAD:main")
    return git(wc, "rev-parse", "HEAD")

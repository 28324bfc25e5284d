"""Checks of the pipeline-design lab: the design document, as pushed, against the repository, as pushed.

The check is gitops-lab's own (`gitops-lab design check`, gitops_lab.assessment):
it parses the document's sections and yaml blocks and compares them with
gates.yaml and the pipeline templates of the same commit.
"""

from __future__ import annotations

from gitops_lab.assessment.design_doc import DOC_PATH, check_design
from gitops_lab.assessment.repo_files import CommitFiles
from gitops_lab.errors import GitOpsLabError
from gitops_lab.resources import environments_source

SHOWN = 4  # problems shown under a failed check; `design check` lists them all


def seed_template(ctx) -> None:
    """Commit the template when the repository has no design document (one seeded by an older gitops-lab)."""
    if ctx.show(DOC_PATH) is not None:
        return
    from gitops_lab.labs.actions import do_commit_file

    template = (environments_source() / DOC_PATH).read_text(encoding="utf-8")
    do_commit_file(ctx, {"path": DOC_PATH, "content": template, "message": "Add the pipeline design template"})


def design_agrees(ctx):
    """The pushed design document is finished and agrees with the pushed gates.yaml and pipeline templates."""
    ref = ctx.pushed()
    try:
        report = check_design(CommitFiles(ctx.git, ref))
    except GitOpsLabError as error:  # no document, or a gates.yaml that does not load
        return False, error.one_line()
    if report.passed:
        return True, (
            f"{DOC_PATH} agrees with the repository: {len(report.stages)} stages, {len(report.gates)} gates, "
            "promotion and rollback criteria"
        )
    shown = "; ".join(str(p) for p in report.problems[:SHOWN])
    more = len(report.problems) - SHOWN
    return False, (
        f"{DOC_PATH} as pushed has {len(report.problems)} problem{'s' if len(report.problems) != 1 else ''}: {shown}"
        + (f"; and {more} more (`gitops-lab design check` lists them all)" if more > 0 else "")
    )


def setting(ctx, section: str, key: str, value):
    """gates.yaml as pushed sets ``section.key`` to ``value`` (the team's decision the document must follow)."""
    from gitops_lab.gates.config import CONFIG_FILE, config_from_text

    try:
        config = config_from_text(ctx.show(CONFIG_FILE), CONFIG_FILE)
    except GitOpsLabError as error:
        return False, error.one_line()
    found = config.verification if section == "verification" else config.settings.get(section, {})
    actual = found.get(key)
    if actual == value:
        return True, f"{CONFIG_FILE} keeps {section}.{key}: {value}"
    return False, (
        f"{CONFIG_FILE} sets {section}.{key} to {actual}, but the team decided {value}: keep gates.yaml as it is "
        "and change the document instead"
    )

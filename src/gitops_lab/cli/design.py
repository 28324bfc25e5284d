"""`gitops-lab design check`: does the pipeline design document agree with the repository?"""

from __future__ import annotations

import click

from gitops_lab.cli.app import Application, output_option, pass_app, repo_option


@click.group("design")
def command() -> None:
    """The pipeline design document (docs/pipeline-design.md in the lab repository).

    The document is seeded from a template; docs/design-document.md describes
    its sections and the ```yaml blocks the check reads.

    \b
    Examples:
      gitops-lab design check
      gitops-lab design check --ref origin/main --output json
    """


@command.command("check")
@click.option(
    "--path",
    "doc_path",
    default="docs/pipeline-design.md",
    show_default=True,
    help="The document, relative to the repository's root.",
)
@click.option(
    "--ref",
    metavar="REF",
    help="Check the document and the pipeline as committed at REF (a branch, tag or commit; e.g. a "
    "classmate's branch to review). Default: the working copy as it is, uncommitted edits included.",
)
@repo_option
@output_option
@pass_app
def check(app: Application, doc_path: str, ref: str | None, repo: str | None, output: str) -> None:
    """Check the design document's structure and that it agrees with the repository.

    Structure: the seven sections are there, none is empty, no TODO of the
    template is left. Agreement: every stage it names is a stage of the pipeline
    (the platform pipeline's, ml-platform-pipelines, and any job of the
    repository's own .github/workflows or .gitlab-ci.yml) and every stage is
    described; every gate it names is in gates.yaml with the thresholds it
    gives; each environment's promotion lists the gates gates.yaml requires;
    the rollback criteria are verification's thresholds. Every difference is
    listed at once. Exits 0 when the document agrees, 4 when it does not, 2
    when there is no document (or no such --ref).

    \b
    Examples:
      gitops-lab design check
      gitops-lab design check --path docs/pipeline-design.md --output json
      git fetch && gitops-lab design check --ref origin/main    # what was pushed
    """
    from gitops_lab.adapters.repo.git import Git
    from gitops_lab.assessment.design_doc import check_design
    from gitops_lab.assessment.repo_files import CommitFiles, FolderFiles, RepoFiles
    from gitops_lab.errors import DesignCheckFailed

    path = app.repo_path(repo)
    files: RepoFiles = CommitFiles(Git(path), ref) if ref else FolderFiles(path)
    report = check_design(files, doc_path)
    app.emit(output, report.to_dict(), format_report(report))
    if not report.passed:
        count = len(report.problems)
        raise DesignCheckFailed(
            f"{doc_path} has {count} problem{'s' if count != 1 else ''} (listed above), the first: {report.problems[0]}",
            fix="fix each one listed above, then run `gitops-lab design check` again "
            "(docs/design-document.md shows the form of each section)",
            report=report,
        )


def format_report(report) -> str:
    """The problems as a SECTION / LINE / PROBLEM table, or one line saying what agreed."""
    from gitops_lab.cli.output import format_table

    if report.passed:
        return (
            f"{report.path} agrees with the repository: {len(report.stages)} stages "
            f"({', '.join(report.templates)}), {len(report.gates)} gates and the rollback criteria (gates.yaml)"
        )
    rows = [(p.section, p.line or "", p.message) for p in report.problems]
    return format_table(("SECTION", "LINE", "PROBLEM"), rows)

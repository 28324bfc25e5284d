"""What `lab report` and `class report` share: their options and their output (the evidence for instructors)."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_lab.cli.app import Application

out_option = click.option(
    "--out",
    "out",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write evidence.md (for people) and evidence-junit.xml (for CI) into DIR. Without it nothing is written.",
)


def emit_evidence(app: Application, evidences: list, out: Path | None, output: str, title: str) -> None:
    """The verdicts as a table (or every fact as JSON) on stdout; the files into ``out`` when asked."""
    from gitops_lab.assessment.evidence import ASSESSMENTS, review_lines
    from gitops_lab.assessment.evidence_report import write_report
    from gitops_lab.cli.output import format_table

    written = write_report(out, evidences, title) if out else []
    table = format_table(
        ("LEARNER", *(a.upper() for a in ASSESSMENTS)),
        [(e.learner, *(e.verdict(a).status for a in ASSESSMENTS)) for e in evidences],
    )
    details = [
        line
        for e in evidences
        for line in (
            *(f"{e.learner} {v.assessment}: {v.summary}" for v in e.verdicts),
            *(f"{e.learner} review {r}" for r in review_lines(e)),
        )
    ]
    details += [f"{e.learner}: {e.problem}" for e in evidences if e.problem]
    text = "\n".join([table, "", *details, *(f"wrote {path}" for path in written)])
    app.emit(output, {"learners": [e.to_dict() for e in evidences], "written": [str(p) for p in written]}, text)

"""The evidence as files: Markdown for people, JUnit XML for CI (one testcase per learner and assessment).

Written only into the folder the user names (``--out DIR``): ``evidence.md``
and ``evidence-junit.xml``.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from gitops_lab.assessment.evidence import ASSESSMENTS, DESIGN, RELEASE, REVIEW, LearnerEvidence, review_lines
from gitops_lab.assessment.rubric import parse_scores
from gitops_lab.errors import UsageError

MARKDOWN_FILE = "evidence.md"
JUNIT_FILE = "evidence-junit.xml"
TITLES = {
    DESIGN: "Pipeline design document",
    REVIEW: "Peer review",
    RELEASE: "Automated promotion with rollback",
}
_MARK = {"passed": "passed", "failed": "**FAILED**", "skipped": "skipped"}


def _commit(sha: str, url: str) -> str:
    return f"[`{sha[:7]}`]({url})" if url else f"`{sha[:7]}`"


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: one line, no column break."""
    return " ".join(text.split()).replace("|", "\\|")


def markdown(evidences: list[LearnerEvidence], title: str) -> str:
    """One section per learner: the verdicts, then the design check, the reviews and the release steps."""
    lines = [f"# {title}", "", "| learner | " + " | ".join(TITLES[a] for a in ASSESSMENTS) + " |"]
    lines.append("|---" * (len(ASSESSMENTS) + 1) + "|")
    for e in evidences:
        lines.append(f"| {e.learner} | " + " | ".join(_MARK[e.verdict(a).status] for a in ASSESSMENTS) + " |")
    for e in evidences:
        lines += ["", f"## {e.learner}", "", f"Repository `{e.repository}` at {_commit(e.commit, e.commit_url)}."]
        if e.problem:
            lines += ["", f"> {e.problem}"]
        lines += ["", *(f"- {TITLES[v.assessment]}: {_MARK[v.status]}, {v.summary}" for v in e.verdicts)]
        lines += ["", "### Design document", ""]
        if e.design is None:
            lines.append(f"Not checked: {e.design_problem}")
        elif e.design["passed"]:
            lines.append(
                f"`{e.design['path']}` agrees with the repository: stages {', '.join(e.design['stages'])}; "
                f"gates {', '.join(e.design['gates'])}; compared with {', '.join(e.design['templates'])}."
            )
        else:
            lines += ["| section | line | problem |", "|---|---|---|"]
            lines += [f"| {p['section']} | {p['line'] or ''} | {_cell(p['message'])} |" for p in e.design["problems"]]
        lines += ["", "### Reviews", ""]
        if e.pull_requests is None:
            lines.append(e.verdict(REVIEW).summary)
        elif not e.pull_requests:
            lines.append("No pull request changes the design document.")
        if e.assigned_reviewers is not None:
            states = ", ".join(f"{u} {s}" for u, s in e.assigned_reviews().items())
            lines += [f"Assigned reviewers (`class reviews assign`): {states or 'none'}", ""]
        for pr in e.pull_requests or []:
            merged = "merged" if pr.merged else pr.state
            lines.append(f"- [#{pr.number} {pr.title}]({pr.url}) by {pr.author}, {merged}")
            lines += ["  - no review yet"] if not pr.reviews else []
            for r in pr.reviews:
                counted = "" if r["official"] else " (not an approver the branch rule counts)"
                said = f": {_cell(r['body'])}" if r["body"].strip() else ""
                who = f"[{r['user']}]({r['url']})" if r["url"] else r["user"]
                lines.append(f"  - {who} {r['state']}{counted}{said}")
                lines.append(f"    - {_cell(parse_scores(r['body']).describe())}")
        lines += ["", "### Automated promotions and rollbacks", ""]
        if not e.releases:
            lines.append("None: `gitops-lab release` has promoted or rolled back nothing in this repository.")
        for s in e.releases:
            lines.append(
                f"- {_commit(s.commit, s.url)} {s.date} {s.action} {s.environment}: {s.previous or '-'} -> "
                f"{s.version}, {s.verdict}{f' ({_cell(s.reason)})' if s.reason else ''}"
            )
            if s.evidence:
                lines.append(f"  - verification of {s.verified_in}:")
                lines += [f"    - {_cell(line)}" for line in s.evidence]
    return "\n".join(lines) + "\n"


def junit(evidences: list[LearnerEvidence], name: str) -> ET.Element:
    """One testsuite per assessment, one testcase per learner: failed when its evidence is missing. The peer
    review's testcase text has a line per review: its reviewer, state and scores (or its score line's problem)."""
    suites = ET.Element("testsuites", name=name)
    for assessment in ASSESSMENTS:
        verdicts = [(e.learner, e.verdict(assessment)) for e in evidences]
        details = {e.learner: review_lines(e) if assessment == REVIEW else [] for e in evidences}
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"assessment.{assessment}",
            tests=str(len(verdicts)),
            failures=str(sum(v.status == "failed" for _, v in verdicts)),
            skipped=str(sum(v.status == "skipped" for _, v in verdicts)),
        )
        for learner, verdict in verdicts:
            case = ET.SubElement(suite, "testcase", classname=f"assessment.{assessment}", name=learner)
            text = "\n".join([verdict.summary, *details[learner]])
            if verdict.status == "failed":
                failure = ET.SubElement(case, "failure", message=verdict.summary[:500], type="EvidenceMissing")
                failure.text = text
            elif verdict.status == "skipped":
                ET.SubElement(case, "skipped", message=verdict.summary)
            else:
                ET.SubElement(case, "system-out").text = text
    return suites


def write_report(out: Path, evidences: list[LearnerEvidence], title: str) -> list[Path]:
    """Write the Markdown and the JUnit XML into ``out`` (made if missing); the paths written."""
    md, xml = out / MARKDOWN_FILE, out / JUNIT_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        md.write_text(markdown(evidences, title), encoding="utf-8")
        ET.ElementTree(junit(evidences, title)).write(xml, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report into {out}: {exc.strerror or exc}", fix="pass --out a folder you can write to"
        ) from exc
    return [md, xml]

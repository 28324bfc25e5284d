"""The input-drift decision: does what the learner recorded follow from prod's evidence?

The evidence is computed now, for real: prod's version and its verification
settings as pushed, the pushed model server and artifact run as a local
process, prod's traffic replayed through it, and verify's own checks read
(accuracy on that traffic, input-drift from the server's /metrics). No running
pod is needed, so the step checks the same on kind, the testbed and Git alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

DECISION_FILE = "decisions/prod-inputs.yaml"
DECISIONS = ("retrain", "rollback")


def prod_evidence(ctx):
    """verify's report of prod's pushed version on prod's traffic, through a local model server."""
    from gitops_lab.adapters.localserver import local_model_server
    from gitops_lab.deadline import Deadline
    from gitops_lab.workflows.verify import expected_from_git, url_target, verify

    expected = expected_from_git(ctx.repo, "prod")
    deadline = Deadline(ctx.timeout)
    with tempfile.TemporaryDirectory(prefix="gitops-lab-drift-") as tmp:
        folder = Path(tmp)
        for path, name in (("base/server.py", "server.py"), (f"base/models/{expected.version}.json", "model.json")):
            text = ctx.show(path)
            if text is None:
                return None, f"{path} is missing from the pushed branch"
            (folder / name).write_text(text, encoding="utf-8")
        (folder / "model.json").rename(folder / f"{expected.version}.json")
        with local_model_server(folder / "server.py", folder, expected.version, deadline) as url:
            report = verify(
                url_target("prod", url), expected.version, expected.artifact, expected.settings, deadline, ctx.reporter
            )
    return report, ""


def right_decision(report) -> tuple[str | None, str]:
    """(decision, why) that the evidence supports; None when there is nothing to decide."""
    accuracy = next(c for c in report.checks if c.name == "accuracy")
    drifted = sorted((d for d in report.input_drift if d.drifted), key=lambda d: -d.psi)
    if not accuracy.passed:
        return (
            "rollback",
            f"{report.version} fails on prod's own traffic ({accuracy.summary}): put back the version that served it",
        )
    if drifted:
        worst = drifted[0]
        return (
            "retrain",
            f"prod's inputs drifted ({worst.feature} PSI {worst.psi:.2f} > {worst.psi_max} over {worst.rows} rows) "
            f"while {report.version} still holds ({accuracy.summary}): every older version sees the same inputs, "
            "so rolling back fixes nothing; retrain on data like prod's",
        )
    return None, "prod's inputs do not drift and its accuracy holds: nothing to decide"


def decision_matches_evidence(ctx):
    """The decision recorded in Git names the drifted feature and is the one the evidence supports."""
    text = ctx.show(DECISION_FILE)
    if text is None:
        return False, f"no {DECISION_FILE} on the pushed branch: record your decision there, commit and push"
    try:
        recorded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return False, f"{DECISION_FILE} is not valid YAML: {' '.join(str(exc).split())}"
    if not isinstance(recorded, dict) or recorded.get("decision") not in DECISIONS:
        return False, f"{DECISION_FILE} must say `decision: retrain` or `decision: rollback`"
    report, problem = prod_evidence(ctx)
    if report is None:
        return False, problem
    want, why = right_decision(report)
    if want is None:
        return False, why
    if recorded["decision"] != want:
        return False, f"{DECISION_FILE} says {recorded['decision']}, but the evidence says {want}: {why}"
    worst = max(report.input_drift, key=lambda d: d.psi)
    if want == "retrain" and recorded.get("feature") != worst.feature:
        return False, (
            f"{DECISION_FILE} names feature {recorded.get('feature')!r}; the one that drifted most is "
            f"{worst.feature} (PSI {worst.psi:.2f}): read `gitops-lab verify --env prod`'s input-drift check"
        )
    return True, f"{want}: {why}"

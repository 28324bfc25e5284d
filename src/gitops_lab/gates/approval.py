"""The approval gate: the destination needs a recorded approval of the candidate.

What counts as an approval (who, when, which version) is one rule, read from
the repository's history by adapters/repo/approval.py, which also records them.
"""

from __future__ import annotations

from gitops_lab.adapters.repo.approval import approval_verdict
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.identity import git_identity
from gitops_lab.gates.result import GateContext, GateResult

NAME = "approval"


def check(ctx: GateContext) -> GateResult:
    verdict = approval_verdict(Git(ctx.root), ctx.dst, ctx.version, ctx.settings, git_identity(Git(ctx.root)))
    details = [f"fail: {line}" for line in verdict.rejected]
    if verdict.approval is None:
        if ctx.dst in (ctx.settings.get("separate_duties") or []) and not any("separate_duties" in d for d in details):
            details.append(
                f"fail: {ctx.dst} needs an approval by someone other than the promoter, "
                f"{git_identity(Git(ctx.root))} (gates.yaml approval.separate_duties)"
            )
        return GateResult(NAME, False, verdict.reason, [f"fail: {verdict.summary}", *details])
    found = verdict.approval
    return GateResult(
        NAME, True, verdict.summary, [f"pass: {ctx.version} for {ctx.dst} {verdict.summary} on {found.date}"]
    )

"""Approvals: a recorded, pushed decision that one version may go to one environment.

An approval is a commit (usually empty) whose trailers are::

    Gitops-Lab-Action: approve
    Environment: prod
    Model-Version: v2
    Approved-By: alice

The rule: an approval of version V for environment E is valid while no
promotion or rollback of E was committed after it. So one approval lets one
promotion through (the promotion it approved is itself a later promotion of E),
and a rollback of E cancels approvals made before it. If gates.yaml names
``approval.approvers``, only approvals by one of them count.
"""

from __future__ import annotations

import getpass
from dataclasses import asdict, dataclass
from pathlib import Path

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.history import log_entries
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.adapters.repo.promotion import ChangeResult, Progress
from gitops_lab.errors import UsageError
from gitops_lab.gates.result import GateContext, GateResult

NAME = "approval"
APPROVED_BY = "Approved-By"
APPROVE = "approve"
#: Actions after which earlier approvals of the same environment no longer count.
_CONSUMING = ("promote", "rollback")


@dataclass
class Approval:
    commit: str
    environment: str
    version: str
    approved_by: str
    date: str

    def to_dict(self) -> dict:
        return asdict(self)


def find_approval(path: str | Path, env: str, version: str, approvers: list[str] | None = None) -> Approval | None:
    """The newest valid approval of ``version`` for ``env`` in HEAD's history, if any."""
    git = Git(path)
    if not (git.is_repo() and git.ok("rev-parse", "--verify", "--quiet", "HEAD")):
        return None  # no commits, so nothing was approved
    for sha, _author, date, _subject, found in log_entries(git):
        if _last(found, t.ENVIRONMENT) != env:
            continue
        action = _last(found, t.ACTION)
        if action in _CONSUMING:
            return None
        if action != APPROVE or _last(found, t.MODEL_VERSION) != version:
            continue
        by = _last(found, APPROVED_BY) or ""
        if approvers and by not in approvers:
            continue
        return Approval(sha, env, version, by, date)
    return None


def git_user(git: Git) -> str:
    """Who is acting: git's user.name in this working copy, else the login name."""
    name = git.run("config", "user.name", check=False).stdout.strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_approval(
    path: str | Path,
    env: str,
    version: str,
    by: str | None = None,
    note: str | None = None,
    on_retry: Progress | None = None,
) -> ChangeResult:
    """Commit and push an approval of ``version`` for ``env``; a no-op if one is already valid."""
    git, layout = Git(path), RepoLayout(path)
    publish.check_clean(git)
    layout.check_env(env)
    layout.check_version(version)
    approver = " ".join((by if by is not None else git_user(git)).split())
    if not approver:
        raise UsageError("the approver's name is empty", fix="pass --by NAME")
    publish.catch_up(git)
    current = layout.model_version(env)
    existing = find_approval(path, env, version)
    if existing and existing.approved_by == approver:
        return ChangeResult(
            APPROVE, env, version, current, None, False,
            f"{version} is already approved for {env} by {approver} ({existing.commit[:7]}); nothing to do",
        )
    trailers = [
        (t.ACTION, APPROVE),
        (t.ENVIRONMENT, env),
        (t.MODEL_VERSION, version),
        (APPROVED_BY, approver),
    ]
    body = note.strip() if note else ""
    message = t.compose(f"Approve {version} for {env}", trailers, body=body)
    with publish.published_or_undone(git, f"the approval of {version} for {env}"):
        sha = publish.commit(git, [], message, allow_empty=True)
        pushed = publish.push(git, on_retry)
    return ChangeResult(
        APPROVE, env, version, current, git.head() if pushed else sha, pushed,
        f"approved {version} for {env} by {approver}", dict(trailers),
    )


def check(ctx: GateContext) -> GateResult:
    approvers = list(ctx.settings.get("approvers") or [])
    found = find_approval(ctx.root, ctx.dst, ctx.version, approvers)
    who = f" by one of {', '.join(approvers)}" if approvers else ""
    if found is None:
        summary = f"no approval of {ctx.version} for {ctx.dst}{who} since {ctx.dst}'s last promotion or rollback"
        return GateResult(NAME, False, summary, [f"fail: {summary}"])
    summary = f"approved by {found.approved_by} in {found.commit[:7]}"
    return GateResult(NAME, True, summary, [f"pass: {ctx.version} for {ctx.dst} {summary} on {found.date}"])


def _last(found: dict[str, list[str]], key: str) -> str | None:
    values = found.get(key)
    return values[-1] if values else None

"""Approvals as Git changes, beside promotion and rollback: a recorded, pushed decision
that one version may go to one environment.

An approval is a commit (usually empty) whose trailers are::

    Gitops-Lab-Action: approve
    Environment: prod
    Model-Version: v2
    Approved-By: alice

The rule, one for the approval gate and for lab checks (``approval_verdict``):
an approval of version V for environment E counts only if it was committed
after E's last change of version (a promotion, a rollback, a lab reset, a hand
edit: any commit that changed E's version line, read from the overlay's own
history) and before the promotion it allows. So one approval lets one
promotion through, and anything that moves E cancels approvals made before it.

The approver is the approval commit's author, its Git identity: the
``Approved-By`` trailer must name that author. If gates.yaml names
``approval.approvers``, only authors listed (by name or email) count; for the
environments in ``approval.separate_duties`` (prod by default), the approver
must be someone other than the promoter. Git lets anyone write any author;
a real setup adds signed commits and protected branches (docs/gates.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.history import log_entries, version_changes
from gitops_lab.adapters.repo.identity import Identity, git_identity
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.adapters.repo.promotion import ChangeResult, Progress, noted
from gitops_lab.errors import GitOpsLabError, UsageError

APPROVED_BY = "Approved-By"
APPROVE = "approve"


@dataclass
class Approval:
    commit: str
    environment: str
    version: str
    approved_by: str
    date: str
    email: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ApprovalVerdict:
    approval: Approval | None
    summary: str  # one line: who approved, or which approval is missing
    rejected: list[str]  # approvals of this version and environment that do not count, and why

    @property
    def reason(self) -> str:
        return self.summary + (f"; approvals that do not count: {'; '.join(self.rejected)}" if self.rejected else "")


def approval_verdict(
    git: Git,
    env: str,
    version: str,
    settings: dict[str, Any] | None = None,
    promoter: Identity | None = None,
    rev: str = "HEAD",
) -> ApprovalVerdict:
    """The newest approval that lets ``version`` into ``env`` at ``rev``, or None and why not.

    ``settings`` is gates.yaml's approval section; ``promoter`` who promotes
    (checked against ``separate_duties``). The gate and lab checks both call this.
    """
    settings = settings or {}
    approvers = list(settings.get("approvers") or [])
    separate = env in (settings.get("separate_duties") or [])
    if not (git.is_repo() and git.ok("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")):
        return ApprovalVerdict(None, f"no approval of {version} for {env}: the repository has no commits", [])
    changes = version_changes(git, env, rev)
    rejected: list[str] = []
    since = ""
    for entry in log_entries(git, rev):
        if entry.sha in changes:
            since = f" since {env}'s last change of version ({entry.sha[:7]}, {entry.subject})"
            break
        if (entry.trailer(t.ACTION), entry.trailer(t.ENVIRONMENT), entry.trailer(t.MODEL_VERSION)) != (
            APPROVE,
            env,
            version,
        ):
            continue
        author = Identity(entry.author, entry.email)
        claimed = entry.trailer(APPROVED_BY) or ""
        if claimed and not author.matches(claimed):
            rejected.append(f"{entry.sha[:7]} says Approved-By: {claimed}, but its author is {author}")
        elif approvers and not any(author.matches(a) for a in approvers):
            rejected.append(
                f"{entry.sha[:7]} is by {author}, who is not one of the approvers "
                f"({', '.join(approvers)}) in gates.yaml"
            )
        elif separate and promoter is not None and author.same_person(promoter):
            rejected.append(
                f"{entry.sha[:7]} is by {author}, the same person who promotes "
                f"({promoter}); {env} needs a second person (gates.yaml approval.separate_duties)"
            )
        else:
            found = Approval(entry.sha, env, version, author.name, entry.date, author.email)
            return ApprovalVerdict(found, f"approved by {author.name} in {entry.sha[:7]}", rejected)
    who = f" by one of {', '.join(approvers)}" if approvers else ""
    return ApprovalVerdict(None, f"no approval of {version} for {env}{who}{since}", rejected)


def find_approval(
    path: str | Path,
    env: str,
    version: str,
    approvers: list[str] | None = None,
    promoter: Identity | None = None,
    separate_duties: list[str] | None = None,
) -> Approval | None:
    """The newest valid approval of ``version`` for ``env`` in HEAD's history, if any."""
    settings = {"approvers": approvers or [], "separate_duties": separate_duties or []}
    return approval_verdict(Git(path), env, version, settings, promoter).approval


def _check_approver(
    settings: dict[str, Any], env: str, approver: Identity, own: Identity, warn: Callable[[str], None] | None
) -> None:
    """Refuse an approver gates.yaml never counts; warn when it counts only if someone else promotes."""
    approvers = list(settings.get("approvers") or [])
    if approvers and not any(approver.matches(a) for a in approvers):
        raise UsageError(
            f"{approver} is not one of the approvers in gates.yaml ({', '.join(approvers)}), so this approval "
            "would never count; nothing was recorded",
            fix="approve as one of them (--by 'NAME <EMAIL>'), or add the approver to approval.approvers in "
            "gates.yaml (a reviewed change)",
        )
    if warn and env in (settings.get("separate_duties") or []) and approver.same_person(own):
        warn(
            f"{env} needs an approver other than the promoter (gates.yaml approval.separate_duties): this approval "
            f"by {approver} counts only if someone else promotes; a promotion from this copy, as {own}, "
            "will not pass the approval gate"
        )


def record_approval(
    path: str | Path,
    env: str,
    version: str,
    by: str | None = None,
    note: str | None = None,
    on_retry: Progress | None = None,
    rules: Callable[[], dict[str, Any]] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ChangeResult:
    """Commit and push an approval of ``version`` for ``env``, authored by ``by``; a no-op if one is already valid.

    ``by`` is a Git identity, ``Name <email>`` (or a name, with this working
    copy's email); default: this working copy's git identity. ``rules`` reads
    gates.yaml's approval section once the copy has caught up with the remote:
    an approval that could never count is refused, or warned about (``warn``),
    before anything is committed.
    """
    git, layout = Git(path), RepoLayout(path)
    publish.check_clean(git)
    layout.check_env(env)
    layout.check_version(version)
    own = git_identity(git)
    approver = Identity.parse(by) if by is not None else own
    if not approver.name:
        raise UsageError("the approver's name is empty", fix="pass --by 'NAME <EMAIL>'")
    approver = Identity(approver.name, approver.email or own.email)
    recovered = publish.catch_up(git)
    if rules is not None:
        try:
            settings = rules()
        except GitOpsLabError:
            settings = {}  # a damaged gates.yaml: the approval gate names it when it runs; recording needs none
        _check_approver(settings, env, approver, own, warn)
    current = layout.model_version(env)
    existing = find_approval(path, env, version)
    if existing and approver.same_person(Identity(existing.approved_by, existing.email)):
        return noted(
            ChangeResult(
                APPROVE,
                env,
                version,
                current,
                None,
                False,
                f"{version} is already approved for {env} by {existing.approved_by} ({existing.commit[:7]}); nothing to do",
            ),
            recovered,
        )
    trailers = [
        (t.ACTION, APPROVE),
        (t.ENVIRONMENT, env),
        (t.MODEL_VERSION, version),
        (APPROVED_BY, approver.name),
    ]
    body = note.strip() if note else ""
    message = t.compose(f"Approve {version} for {env}", trailers, body=body)
    # The approval is the commit's author: that identity is what the gate checks.
    author = Git(path, env={"GIT_AUTHOR_NAME": approver.name, "GIT_AUTHOR_EMAIL": approver.email})
    with publish.published_or_undone(git, f"the approval of {version} for {env}"):
        sha = publish.commit(author, [], message, allow_empty=True)
        pushed = publish.push(git, on_retry)
    return noted(
        ChangeResult(
            APPROVE,
            env,
            version,
            current,
            git.head() if pushed else sha,
            pushed,
            f"approved {version} for {env} by {approver.name}",
            dict(trailers),
        ),
        recovered,
    )

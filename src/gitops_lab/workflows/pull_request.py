"""Promotion by pull request, on a lab whose remote is a forge (Gitea).

Where the destination needs an approval (gates.yaml's approval gate: prod by
default), Gitea's branch rule refuses a push to main, and the approval is a
review on the forge, not a commit trailer:
- ``promote`` runs the other gates, pushes the one-line promotion commit to
  ``promote/<env>-<version>`` (the same commit and trailers as a direct
  promotion; the same publish-or-undo path), opens the pull request and posts
  each gate's verdict as a commit status on its head;
- ``approve`` is an approving review by a reviewer account of the credentials
  file; Gitea itself refuses the author's own approval;
- a re-run (or ``--merge``) merges the pull request once the rule's approvers
  approved it, deletes its branch and fast-forwards the local main.
Every step reads first, so a re-run finds the same branch and pull request.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.forge.gitea import Account, GiteaAPI, PullRequest
from gitops_lab.adapters.forge.seed import ForgeAccounts, read_accounts
from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.history import HistoryEntry
from gitops_lab.adapters.repo.layout import BRANCH, RepoLayout
from gitops_lab.adapters.repo.promotion import ChangeResult, Progress
from gitops_lab.adapters.repo.promotion import rollback as repo_rollback
from gitops_lab.adapters.repo.pushed import fetch_branch
from gitops_lab.errors import ForgeError, GateFailed, NotFound, RepoStateError, UsageError
from gitops_lab.gates import GateResult
from gitops_lab.state import EnvironmentState

APPROVAL_GATE = "approval"
#: How a lab without a forge gets one, for every message that needs it.
NO_FORGE_FIX = (
    "bring the lab up with one (`gitops-lab up --git-server gitea`), or point the working copy at one "
    "(`gitops-lab repo init --forge-url URL --forge-credentials FILE`)"
)
STATUS_PREFIX = "gitops-lab/"


@dataclass(frozen=True)
class LabForge:
    """The lab repository on its forge, with the accounts it was seeded with."""

    url: str
    credentials: Path
    accounts: ForgeAccounts
    owner: str
    name: str

    @property
    def learner(self) -> GiteaAPI:
        """The API as the learner: the promoter, who opens and merges the pull requests."""
        return GiteaAPI(self.url, self.accounts.learner)

    def account(self, username: str) -> Account | None:
        known = (self.accounts.learner, *self.accounts.reviewers, self.accounts.admin, self.accounts.engine)
        return next((a for a in known if a.username == username), None)

    def open_pull_request(self, branch: str) -> PullRequest | None:
        found = self.learner.open_pull_request_of(self.owner, self.name, branch, BRANCH)
        return self.learner.pull_request(self.owner, self.name, found.number) if found else None

    def rule(self) -> tuple[int, list[str]]:
        """(required approvals, who may approve) of main's branch rule; (0, []) when main is not protected."""
        rule = self.learner.branch_protection(self.owner, self.name, BRANCH) or {}
        return int(rule.get("required_approvals") or 0), sorted(rule.get("approvals_whitelist_username") or [])

    def may_bypass(self, username: str) -> bool:
        """Whether main's branch rule lets ``username`` merge a pull request it would hold (its bypass allowlist)."""
        rule = self.learner.branch_protection(self.owner, self.name, BRANCH) or {}
        return bool(rule.get("enable_bypass_allowlist")) and username in (rule.get("bypass_allowlist_usernames") or [])


def lab_forge(state: EnvironmentState | None, repo_path: Path) -> LabForge | None:
    """The forge `repo init --forge-url` saved for the working copy at ``repo_path``; None without one."""
    if state is None or not state.forge_url or not state.forge_credentials:
        return None
    if state.repo_path and Path(state.repo_path).resolve() != Path(repo_path).resolve():
        return None  # the saved forge is another working copy's
    credentials = Path(state.forge_credentials)
    accounts = read_accounts(credentials)
    owner, name = _repository(Git(repo_path).remote_url() or "", accounts.learner.username)
    return LabForge(state.forge_url.rstrip("/"), credentials, accounts, owner, name)


def _repository(remote: str, learner: str) -> tuple[str, str]:
    """OWNER/NAME from the remote's URL (``http://host/owner/name.git``), else the learner's ``lab``."""
    parts = [p for p in urllib.parse.urlsplit(remote).path.split("/") if p]
    if len(parts) >= 2:
        return parts[-2], parts[-1].removesuffix(".git")
    return learner, "lab"


def needs_review(required: list[str]) -> bool:
    """Whether a destination with these required gates is promoted by pull request (on a forge)."""
    return APPROVAL_GATE in required


def branch_for(env: str, version: str) -> str:
    return f"promote/{env}-{version}"


def reusable_branch(git: Git, branch: str, env: str, version: str) -> str | None:
    """The commit an earlier run pushed to ``branch`` without opening its pull request, when it still
    promotes ``version`` to ``env`` on top of the remote's main; None when the branch is not there.

    A branch that holds anything else is refused, never overwritten (no force push).
    """
    tracking = fetch_branch(git, branch)
    if tracking is None:
        return None
    tip = git.out("rev-parse", tracking)
    block = git.out("log", "-1", "--format=%(trailers:only,unfold)", tip)
    found = {key: values[-1] for key, values in t.parse(block).items()}
    on_main = git.out("rev-parse", f"{tip}^") == git.out("rev-parse", publish.remote_branch(git))
    if (found.get(t.ENVIRONMENT), found.get(t.MODEL_VERSION)) == (env, version) and on_main:
        return tip
    raise RepoStateError(
        f"the remote already has a branch {branch} that does not set {env} to {version} on top of {BRANCH} "
        f"(its tip is {tip[:7]})",
        fix=f"delete it on the forge (`git push origin --delete {branch}`), then re-run",
    )


def post_verdicts(forge: LabForge, sha: str, results: list[GateResult]) -> None:
    """Each gate's verdict as a commit status on ``sha``, where the pull request shows it."""
    for r in results:
        state = "skipped" if r.skipped else "success" if r.passed else "failure"
        forge.learner.post_status(forge.owner, forge.name, sha, state, STATUS_PREFIX + r.name, r.summary)


def open_for(forge: LabForge, change: ChangeResult, branch: str, src: str, gates: list[GateResult]) -> PullRequest:
    """Open the promotion's pull request (or find it), with the gate verdicts on its head."""
    title = f"Promote {change.version} to {change.environment}"
    verdicts = "\n".join(f"- {r.name}: {r.verdict}" for r in gates) or "- no gates ran"
    body = (
        f"Promotes {change.version} from {src} to {change.environment} (was {change.previous}).\n\n"
        f"Gates:\n{verdicts}\n\nMerge after an approving review: `gitops-lab promote --to {change.environment}`."
    )
    pr = forge.learner.open_pull_request(forge.owner, forge.name, branch, BRANCH, title, body)
    if change.commit:
        post_verdicts(forge, change.commit, gates)
    return pr


def approved(forge: LabForge, pr: PullRequest) -> bool:
    """Whether ``pr`` has the approving reviews main's branch rule asks for (at least one)."""
    required, _ = forge.rule()
    return len(pr.approvers) >= max(required, 1)


def waiting(forge: LabForge, pr: PullRequest, change: ChangeResult, opened: bool) -> ChangeResult:
    required, approvers = forge.rule()
    who = f" by {required} of {', '.join(approvers)}" if approvers else ""
    have = (
        f" ({len(pr.approvers)} of {max(required, 1)}: approved by {', '.join(pr.approvers)})" if pr.approvers else ""
    )
    verb = "opened" if opened else "pull request is open:"
    change.message = f"{verb} #{pr.number} {pr.url}; waiting for review{who}{have}"
    change.pull_request = described(pr)
    return change


def merge(forge: LabForge, git: Git, pr: PullRequest, env: str, version: str, previous: str) -> ChangeResult:
    """Merge the approved pull request, delete its branch and bring the local main up to the merge."""
    required, approvers = forge.rule()
    have = pr.approvers
    if len(have) < max(required, 1):
        among = f" by one of {', '.join(approvers)}" if approvers else ""
        raise GateFailed(
            f"pull request #{pr.number} cannot be merged yet: {env} needs {max(required, 1)} approving "
            f"review{'s' if required > 1 else ''}{among}, and it has {len(have) or 'none'}",
            fix=f"a reviewer approves it: `gitops-lab approve --env {env} --version {version} --by NAME`",
            version=version,
        )
    merged = forge.learner.merge(forge.owner, forge.name, pr.number, f"Merge pull request #{pr.number}: {pr.title}")
    message = (
        f"merged pull request #{pr.number} (approved by {', '.join(have)}): {env} now runs {version} (was {previous})"
    )
    return _after_merge(forge, git, pr, merged, ChangeResult("promote", env, version, previous, None, True, message))


def _after_merge(forge: LabForge, git: Git, pr: PullRequest, merged: PullRequest, result: ChangeResult) -> ChangeResult:
    """``result`` once ``pr`` is merged: its branch deleted, the local main brought up to the merge commit."""
    forge.learner.delete_branch(forge.owner, forge.name, pr.head)
    publish.catch_up(git)
    result.commit = merged.merge_sha or git.head()
    result.pull_request = described(merged)
    return result


def finish_merged(forge: LabForge, git: Git, env: str, version: str) -> ChangeResult | None:
    """The promotion of ``version`` to ``env`` when Gitea merged its pull request but the run that asked for the
    merge stopped before it knew (Gitea went away meanwhile): its branch is still there. Finished now: the branch
    deleted, the local main at the merge (the caller caught up with it). None when there is no such merge."""
    branch = branch_for(env, version)
    for pr in forge.learner.pull_requests(forge.owner, forge.name, state="closed", with_reviews=False):
        # Gitea names a merged pull request's head by its branch while the branch exists (refs/pull/N/head after)
        if pr.merged and pr.head == branch and pr.base == BRANCH:
            merged = forge.learner.pull_request(forge.owner, forge.name, pr.number)
            previous = git.out("log", "-1", f"--format=%(trailers:key={t.PREVIOUS_VERSION},valueonly)", pr.head_sha)
            approvers = f" (approved by {', '.join(merged.approvers)})" if merged.approvers else ""
            message = (
                f"Gitea merged pull request #{pr.number}{approvers} for an earlier run that did not hear its answer: "
                f"{env} now runs {version} (was {previous}); deleted its branch {branch}"
            )
            result = ChangeResult("promote", env, version, previous, None, True, message)
            return _after_merge(forge, git, merged, merged, result)
    return None


def described(pr: PullRequest) -> dict:
    return {
        "number": pr.number,
        "url": pr.url,
        "head": pr.head,
        "merged": pr.merged,
        "merged_by": pr.merged_by,
        "approvers": pr.approvers,
        "reviewers": pr.reviewers,
    }


@dataclass
class ReviewResult:
    environment: str
    version: str
    by: str
    pull_request: dict
    changed: bool
    message: str

    def to_dict(self) -> dict:
        return {
            "environment": self.environment,
            "version": self.version,
            "by": self.by,
            "pull_request": self.pull_request,
            "changed": self.changed,
        }


def approve(forge: LabForge, env: str, version: str, by: str | None, note: str | None) -> ReviewResult:
    """An approving review of the promotion's pull request, as the account ``by`` of the credentials file."""
    branch = branch_for(env, version)
    pr = forge.open_pull_request(branch)
    if pr is None:
        raise NotFound(
            f"no open pull request promotes {version} to {env} on {forge.url}/{forge.owner}/{forge.name} "
            f"(branch {branch})",
            fix=f"open it with `gitops-lab promote --to {env} --version {version}`",
        )
    required, approvers = forge.rule()
    if not by:
        raise UsageError(
            f"on a forge, an approval is a review by a reviewer account; --by names it ({', '.join(approvers)})",
            fix=f"pass --by {approvers[0] if approvers else 'NAME'}",
        )
    account = forge.account(by)
    if account is None:
        raise UsageError(
            f"--by {by}: no such account in the forge credentials file {forge.credentials}",
            fix=f"name one of the approvers: {', '.join(approvers) or 'none are set on main'}",
        )
    # The author is left to Gitea, which refuses an approval of one's own pull request whatever the rule says.
    if by != pr.author and approvers and by not in approvers:
        raise UsageError(
            f"{by} is not among the approvers of {BRANCH} ({', '.join(approvers)}): their approval would not count",
            fix=f"pass --by one of {', '.join(approvers)}",
        )
    if any(r.user == by and r.state == "APPROVED" and r.commit == pr.head_sha for r in pr.reviews):
        return ReviewResult(
            env, version, by, described(pr), False, f"#{pr.number} already approved by {by}; nothing to do"
        )
    try:
        forge.learner.as_user(account).review(forge.owner, forge.name, pr.number, "APPROVED", note or "")
    except ForgeError as exc:
        if exc.status == 422:
            raise ForgeError(
                f"{by} opened pull request #{pr.number} and cannot approve it: Gitea refuses an approval of "
                "one's own pull request",
                fix=f"ask a reviewer: `gitops-lab approve --env {env} --version {version} --by "
                f"{approvers[0] if approvers else 'NAME'}`",
                status=exc.status,
            ) from exc
        raise
    pr = forge.learner.pull_request(forge.owner, forge.name, pr.number)
    counted = "" if by in pr.approvers else " (it does not count toward the branch rule)"
    return ReviewResult(
        env,
        version,
        by,
        described(pr),
        True,
        f"approved #{pr.number} ({version} for {env}) as {by}{counted}; merge with `gitops-lab promote --to {env}`",
    )


def reviewed(forge: LabForge, entries: list[HistoryEntry]) -> dict[str, PullRequest]:
    """commit -> the merged pull request whose merge it is, for the history's entries that came through one."""
    commits = {e.commit for e in entries}
    found: dict[str, PullRequest] = {}
    for pr in forge.learner.pull_requests(forge.owner, forge.name, state="closed", with_reviews=False):
        if pr.merged and pr.merge_sha in commits:
            found[pr.merge_sha] = forge.learner.pull_request(forge.owner, forge.name, pr.number)
    return found


def rollback_branch(env: str, version: str) -> str:
    return f"rollback/{env}-{version}"


def roll_back(forge: LabForge, repo_path: Path, env: str, to: str | None, on_retry: Progress | None) -> ChangeResult:
    """Roll ``env`` back through a pull request, merged at once: reviewed when it is approved already, else by the
    admin account past the branch rule (its bypass allowlist), because going back must always be possible.

    The rollback's commit is the one a plain rollback makes (a version ``env`` ran before), pushed to
    ``rollback/<env>-<version>``. A re-run finds the open pull request, or the branch a stopped run pushed.
    """
    git = Git(repo_path)
    publish.check_clean(git)
    publish.catch_up(git)
    pr = _open_rollback(forge, env)
    if pr is None:
        left = _leftover_rollback(git, env)
        if left is None:
            change = repo_rollback(
                repo_path, env, to, on_retry=on_retry, branch_of=lambda version: rollback_branch(env, version)
            )
            if not change.pushed or change.commit is None:
                return change  # nothing to do, or done already
            branch = rollback_branch(env, change.version)
        else:
            branch = left
        version = branch.removeprefix(rollback_branch(env, ""))
        title = f"Roll back {env} to {version}"
        body = (
            f"Rolls {env} back to {version}, a version it ran before (made by `gitops-lab rollback --env {env}`).\n\n"
            "An emergency change: when no reviewer approved it yet, the lab's admin account merges it past the "
            "branch rule, and the merge names that account."
        )
        pr = forge.learner.open_pull_request(forge.owner, forge.name, branch, BRANCH, title, body)
        pr = forge.learner.pull_request(forge.owner, forge.name, pr.number)
    version = pr.head.removeprefix(rollback_branch(env, ""))
    if to is not None and version != to:
        raise UsageError(
            f"pull request #{pr.number} already rolls {env} back to {version}, not {to}",
            fix=f"let it merge first (`gitops-lab rollback --env {env}`), or close it on the forge, then re-run",
        )
    return _merge_rollback(forge, git, pr, env, version, RepoLayout(repo_path).model_version(env))


def _open_rollback(forge: LabForge, env: str) -> PullRequest | None:
    prefix = rollback_branch(env, "")
    for pr in forge.learner.pull_requests(forge.owner, forge.name, state="open", with_reviews=False):
        if pr.head.startswith(prefix) and pr.base == BRANCH:
            return forge.learner.pull_request(forge.owner, forge.name, pr.number)
    return None


def _leftover_rollback(git: Git, env: str) -> str | None:
    """The rollback branch a stopped run pushed without opening its pull request, when it still sits on main."""
    remote = git.lab_remote() or "origin"
    listed = git.run("ls-remote", "--heads", remote, f"refs/heads/{rollback_branch(env, '*')}", check=False)
    for line in listed.stdout.splitlines() if listed.returncode == 0 else []:
        branch = line.split()[-1].removeprefix("refs/heads/")
        if reusable_branch(git, branch, env, branch.removeprefix(rollback_branch(env, ""))):
            return branch
    return None


def _merge_rollback(forge: LabForge, git: Git, pr: PullRequest, env: str, version: str, previous: str) -> ChangeResult:
    admin = forge.accounts.admin
    if approved(forge, pr):
        merged = forge.learner.merge(forge.owner, forge.name, pr.number, f"Merge pull request #{pr.number}: {pr.title}")
        how = f"approved by {', '.join(pr.approvers)}"
    elif forge.may_bypass(admin.username):
        merged = GiteaAPI(forge.url, admin).merge(
            forge.owner, forge.name, pr.number, f"Merge pull request #{pr.number}: {pr.title} (emergency)", force=True
        )
        how = f"merged by {admin.username} without review"
    else:
        change = ChangeResult("rollback", env, version, previous, None, False, "")
        waiting(forge, pr, change, opened=False)
        change.message = (
            f"{change.message}; {BRANCH}'s branch rule lets no account merge a rollback unreviewed "
            f"(its bypass allowlist does not name {admin.username})"
        )
        return change
    message = f"rolled {env} back from {previous} to {version}: merged pull request #{pr.number} ({how})"
    return _after_merge(forge, git, pr, merged, ChangeResult("rollback", env, version, previous, None, True, message))

"""Gitea's HTTP API (``/api/v1``), for what the lab asks of a forge: accounts,
repositories, branch protection, pull requests, reviews, commit statuses, webhooks.

Every call authenticates with an account's password (HTTP basic auth, which
Gitea's API accepts for accounts without two-factor sign-in) and ends by the
running command's deadline. Gitea's refusals become ``ForgeError`` carrying its
status and its own message. The ``ensure_*`` calls are idempotent: they read
first and write only what differs, and say whether they changed anything.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.errors import ForgeError, WaitTimeout
from gitops_lab.deadline import within_deadline

# One call's own bound, below the command's deadline: Gitea answers API calls in
# milliseconds; a merge (a real git merge and push on the server) takes longer.
CALL_SECONDS = 30.0
# Gitea checks a new pull request's mergeability in the background; until it is
# done a merge is refused with 405 "Please try again later".
MERGE_SETTLE_SECONDS = 60.0
# The commit status states Gitea knows (modules/commitstatus of the pinned release).
STATUS_STATES = ("pending", "success", "error", "failure", "warning", "skipped")
# Gitea records a push (the repository no longer empty, its branches) from a queue, a moment after it.
PUSH_SETTLE_SECONDS = 15.0
# One readiness probe's bound: a ready Gitea answers /api/healthz at once, so a slow probe means not ready.
READY_PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    email: str

    def to_dict(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "email": self.email}


@dataclass(frozen=True)
class BranchRule:
    """Branch protection as the lab uses it.

    A change reaches ``branch`` through a pull request with ``required_approvals``
    approving reviews by ``approvers`` (Gitea never counts one by the pull
    request's author: it refuses it), and admins cannot merge past that. The one
    exception: pushes that touch only files matching ``push_files`` (Gitea globs,
    ``;``-separated; e.g. dev's and staging's overlays) may go straight to the
    branch. Gitea's "protected file patterns" do not fit here: they refuse a
    change to those files even through an approved pull request.

    ``bypass`` names the accounts that may merge a pull request the rule would
    hold (Gitea's bypass allowlist, a "force merge"): the lab's admin, which
    the tool uses only to merge an emergency rollback (workflows/pull_request.py).
    Nobody may push to ``branch`` directly, the bypass accounts included.
    """

    branch: str = "main"
    required_approvals: int = 1
    approvers: tuple[str, ...] = ()
    push_files: str = ""
    bypass: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        """The rule as the fields of Gitea's branch protection (create and edit options)."""
        return {
            "enable_push": False,
            "unprotected_file_patterns": self.push_files,
            "protected_file_patterns": "",
            "required_approvals": self.required_approvals,
            "enable_approvals_whitelist": bool(self.approvers),
            "approvals_whitelist_username": sorted(self.approvers),
            "block_on_rejected_reviews": True,
            "dismiss_stale_approvals": True,
            "block_admin_merge_override": True,
            "enable_bypass_allowlist": bool(self.bypass),
            "bypass_allowlist_usernames": sorted(self.bypass),
        }


@dataclass(frozen=True)
class Review:
    user: str
    state: str  # APPROVED, REQUEST_CHANGES, COMMENT, ...
    commit: str
    official: bool = False  # by someone the branch rule counts (in its approvers)
    body: str = ""  # the review's summary (the rubric's scores, by docs/design-review-rubric.md)
    url: str = ""  # the review on Gitea's web UI


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    state: str  # open, closed
    merged: bool
    head: str  # branch
    head_sha: str
    base: str
    author: str
    merge_sha: str | None = None
    merged_by: str = ""
    reviews: tuple[Review, ...] = field(default=())
    url: str = ""  # the pull request on Gitea's web UI
    requested_reviewers: tuple[str, ...] = ()  # asked to review and not reviewed since

    @property
    def approvers(self) -> list[str]:
        """Who approved in a way the branch rule counts, in order, each once."""
        return list(dict.fromkeys(r.user for r in self.reviews if r.state == "APPROVED" and r.official))

    @property
    def reviewers(self) -> list[str]:
        """Everyone who reviewed, in order, each once."""
        return list(dict.fromkeys(r.user for r in self.reviews))


def _review(data: dict[str, Any]) -> Review:
    return Review(
        user=(data.get("user") or {}).get("login") or "",
        state=data.get("state") or "",
        commit=data.get("commit_id") or "",
        official=bool(data.get("official")),
        body=data.get("body") or "",
        url=data.get("html_url") or "",
    )


def _pull(data: dict[str, Any], reviews: tuple[Review, ...] = ()) -> PullRequest:
    return PullRequest(
        number=int(data["number"]),
        title=data.get("title") or "",
        state=data.get("state") or "",
        merged=bool(data.get("merged")),
        head=(data.get("head") or {}).get("ref") or "",
        head_sha=(data.get("head") or {}).get("sha") or "",
        base=(data.get("base") or {}).get("ref") or "",
        author=(data.get("user") or {}).get("login") or "",
        merge_sha=data.get("merge_commit_sha"),
        merged_by=(data.get("merged_by") or {}).get("login") or "",
        reviews=reviews,
        url=data.get("html_url") or "",
        requested_reviewers=tuple(u.get("login") or "" for u in data.get("requested_reviewers") or []),
    )


class GiteaAPI:
    """Gitea's API at ``base_url`` (``http://host:port``), as ``account``."""

    def __init__(self, base_url: str, account: Account):
        self.base_url = base_url.rstrip("/")
        self.account = account

    def as_user(self, account: Account) -> GiteaAPI:
        return GiteaAPI(self.base_url, account)

    # ------------------------------------------------------------------ HTTP
    def call(self, method: str, path: str, body: Any = None, missing_ok: bool = False) -> Any:
        """One API call; the decoded JSON answer (None for an empty one, or a 404 when ``missing_ok``)."""
        try:
            raw = self._send(method, path, body, CALL_SECONDS)
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise self._refused(method, path, exc) from exc
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            # what answered is not Gitea's API: a proxy's or another server's page
            raise ForgeError(
                f"what answers at {self.base_url} is not Gitea's API ({method} {path} returned no JSON)",
                fix="check --forge-url: it is Gitea's own address (http://HOST:PORT), without a path",
            ) from exc

    def ready(self, seconds: float = READY_PROBE_SECONDS) -> str | None:
        """None when Gitea's ``/api/healthz`` says it is ready; else why not, in words (refused, silent, 5xx)."""
        try:
            self._send("GET", "/api/healthz", None, seconds, api=False)
        except urllib.error.HTTPError as exc:
            return f"/api/healthz answered {exc.code} {exc.reason}"
        except ForgeError as exc:
            return exc.message
        return None

    def _send(self, method: str, path: str, body: Any, seconds: float, api: bool = True) -> bytes:
        """The body of Gitea's answer to one request, within ``seconds`` and the command's deadline.

        ``path`` is under ``/api/v1``, as this account; with ``api=False`` it is under Gitea's root, unsigned.

        An HTTP error status is raised as ``urllib.error.HTTPError`` for the caller to read; Gitea down
        (refused), silent (accepts and never answers) or gone mid-answer is one ``ForgeError`` naming
        its URL and the fix; the command's deadline passed is ``WaitTimeout``.
        """
        timeout = within_deadline(seconds)
        if timeout <= 0:
            raise WaitTimeout(
                f"the command's time ran out before Gitea's {method} {path}",
                fix="run the command again; it picks up where it stopped",
            )
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base_url}{'/api/v1' if api else ''}{path}", data=data, method=method)
        if api:
            token = base64.b64encode(f"{self.account.username}:{self.account.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        # a write cut off mid-way may or may not have been done: every caller reads before it writes,
        # so running the command again finds what Gitea did and finishes the rest
        again = "then run the command again" + (" (it reads what Gitea already has first)" if method != "GET" else "")
        try:
            # urlopen's timeout bounds each wait on the socket (connect, every read), not their sum:
            # a Gitea that answers at all answers in one read or a few, well inside it
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise
            raise self._failed(method, path, exc) from exc
        except (socket.timeout, TimeoutError) as exc:
            raise ForgeError(
                f"Gitea at {self.base_url} did not answer {method} {path} within {timeout:.0f}s",
                fix=f"Gitea is hung or overloaded: check its process or pod (its log), restart it if needed, {again}",
            ) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise ForgeError(
                    f"Gitea at {self.base_url} did not accept a connection for {method} {path} within {timeout:.0f}s",
                    fix=f"check that Gitea is running and that {self.base_url} reaches it, {again}",
                ) from exc
            raise ForgeError(
                f"cannot reach Gitea at {self.base_url} ({method} {path}): {_said(exc.reason)}",
                fix=f"start Gitea or wait until it is up (`curl {self.base_url}/api/healthz`), {again}",
            ) from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            # Gitea killed, restarted or crashed while it answered
            raise ForgeError(
                f"Gitea at {self.base_url} broke off its answer to {method} {path}: {_said(exc)}",
                fix=f"wait until Gitea is up again (`curl {self.base_url}/api/healthz`), {again}",
            ) from exc

    def _failed(self, method: str, path: str, exc: urllib.error.HTTPError) -> ForgeError:
        """Gitea (or the proxy in front of it) failed with a 5xx: not the request's fault, nor the learner's."""
        said = _message(exc)
        return ForgeError(
            f"Gitea at {self.base_url} failed {method} {path} ({exc.code}): {said}",
            fix=(
                "Gitea is starting, restarting or broken: wait a moment and run the command again "
                "(it reads what Gitea already has first); if it keeps failing, read Gitea's log"
            ),
            status=exc.code,
        )

    def _refused(self, method: str, path: str, exc: urllib.error.HTTPError) -> ForgeError:
        said = _message(exc)
        if exc.code == 401:
            fix = f"check the password of Gitea account {self.account.username!r} in the lab's credentials file"
        elif exc.code == 403:
            fix = f"Gitea account {self.account.username!r} lacks the right; ask the repository's owner or an admin"
        else:
            fix = None
        return ForgeError(f"Gitea refused {method} {path} ({exc.code}): {said}", fix=fix, status=exc.code)

    # -------------------------------------------------------------- accounts
    def whoami(self) -> dict[str, Any] | None:
        """The signed-in account, or None when Gitea does not know these credentials."""
        try:
            return self.call("GET", "/user")
        except ForgeError as exc:
            if exc.status == 401:
                return None
            raise

    def ensure_user(self, account: Account) -> bool:
        """Create ``account`` (as an admin) unless it exists; a new one need not change its password.

        An account that exists must answer to the kept password: one made by someone else (or by
        another lab on the same Gitea) is refused, never taken over by resetting its password.
        """
        if self.call("GET", f"/users/{_q(account.username)}", missing_ok=True) is not None:
            if self.as_user(account).whoami() is None:
                raise ForgeError(
                    f"Gitea account {account.username!r} exists but does not answer to the password kept for it",
                    fix=(
                        f"if the account is the lab's, set the kept password with `gitea admin user change-password "
                        f"--username {account.username} --password ...`; if it is someone else's, name the lab's "
                        "accounts differently; then seed again"
                    ),
                )
            return False
        self.call(
            "POST",
            "/admin/users",
            {
                "username": account.username,
                "email": account.email,
                "password": account.password,
                "must_change_password": False,
                "send_notify": False,
            },
        )
        return True

    # ---------------------------------------------------------- repositories
    def ensure_repository(self, owner: str, name: str, private: bool = True) -> bool:
        """Make ``owner/name`` exist (as an admin), empty, default branch ``main``."""
        if self.repository(owner, name) is not None:
            return False
        self.call(
            "POST",
            f"/admin/users/{_q(owner)}/repos",
            {"name": name, "private": private, "auto_init": False, "default_branch": "main"},
        )
        return True

    def repository(self, owner: str, name: str) -> dict[str, Any] | None:
        return self.call("GET", f"/repos/{_q(owner)}/{_q(name)}", missing_ok=True)

    def has_branch(self, owner: str, name: str, branch: str, settle: float = 0.0) -> bool:
        """Whether ``branch`` has a commit. Gitea records a push in the background, so right after
        one it may not know yet: ``settle`` seconds (within the deadline) are given to it."""
        deadline = time.monotonic() + within_deadline(settle)
        while True:
            repo = self.repository(owner, name)
            # a branch query on an empty repository makes Gitea fail with a 500 (it opens no Git repository for it)
            path = f"/repos/{_q(owner)}/{_q(name)}/branches/{_q(branch)}"
            if repo is not None and not repo.get("empty") and self.call("GET", path, missing_ok=True) is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)

    def ensure_collaborator(self, owner: str, name: str, user: str, permission: str) -> bool:
        """Give ``user`` ``permission`` (read, write, admin) on the repository, exactly."""
        current = self.call(
            "GET", f"/repos/{_q(owner)}/{_q(name)}/collaborators/{_q(user)}/permission", missing_ok=True
        )
        is_collaborator = self._is_collaborator(owner, name, user)
        # Gitea answers a site admin's permission as "owner" (its effective right), whatever its grant of admin.
        granted = {"owner": "admin"}.get((current or {}).get("permission", ""), (current or {}).get("permission"))
        if is_collaborator and granted == permission:
            return False
        self.call("PUT", f"/repos/{_q(owner)}/{_q(name)}/collaborators/{_q(user)}", {"permission": permission})
        return True

    def ensure_can_read(self, owner: str, name: str, user: str) -> bool:
        """Make ``user`` able to read the repository: a read collaborator unless they can already (never lowered)."""
        current = self.call(
            "GET", f"/repos/{_q(owner)}/{_q(name)}/collaborators/{_q(user)}/permission", missing_ok=True
        )
        if current and current.get("permission") in ("read", "write", "admin", "owner"):
            return False
        self.call("PUT", f"/repos/{_q(owner)}/{_q(name)}/collaborators/{_q(user)}", {"permission": "read"})
        return True

    def _is_collaborator(self, owner: str, name: str, user: str) -> bool:
        try:
            self.call("GET", f"/repos/{_q(owner)}/{_q(name)}/collaborators/{_q(user)}")
        except ForgeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def ensure_branch_rule(self, owner: str, name: str, rule: BranchRule) -> bool:
        """Protect ``rule.branch`` as the rule says; edit an existing protection only where it differs."""
        base = f"/repos/{_q(owner)}/{_q(name)}/branch_protections"
        want = rule.settings()
        current = self.call("GET", f"{base}/{_q(rule.branch)}", missing_ok=True)
        if current is None:
            self.call("POST", base, {"rule_name": rule.branch, **want})
            return True
        if all(_same(current.get(k), v) for k, v in want.items()):
            return False
        self.call("PATCH", f"{base}/{_q(rule.branch)}", want)
        return True

    def ensure_push_webhook(self, owner: str, name: str, url: str, secret: str) -> bool:
        """A Gitea-format push webhook to ``url`` signed with ``secret``; one per URL."""
        base = f"/repos/{_q(owner)}/{_q(name)}/hooks"
        for hook in self.call("GET", base) or []:
            if (hook.get("config") or {}).get("url") == url:
                if hook.get("active") and hook.get("events") == ["push"]:
                    return False
                self.call("PATCH", f"{base}/{hook['id']}", {"active": True, "events": ["push"]})
                return True
        self.call(
            "POST",
            base,
            {
                "type": "gitea",
                "config": {"url": url, "content_type": "json", "secret": secret},
                "events": ["push"],
                "active": True,
            },
        )
        return True

    # ---------------------------------------------------------- pull requests
    def open_pull_request(self, owner: str, name: str, head: str, base: str, title: str, body: str) -> PullRequest:
        """Open a pull request of ``head`` into ``base``; the open one there already is, if any."""
        found = self.open_pull_request_of(owner, name, head, base)
        if found is not None:
            return found
        data = self.call(
            "POST", f"/repos/{_q(owner)}/{_q(name)}/pulls", {"head": head, "base": base, "title": title, "body": body}
        )
        return _pull(data)

    def open_pull_request_of(self, owner: str, name: str, head: str, base: str) -> PullRequest | None:
        """The open pull request of ``head`` into ``base`` (without its reviews), or None."""
        for pr in self.pull_requests(owner, name, state="open", with_reviews=False):
            if pr.head == head and pr.base == base:
                return pr
        return None

    def close_pull_request(self, owner: str, name: str, number: int) -> None:
        """Close pull request ``number`` unmerged; its commits and reviews stay on the forge."""
        self.call("PATCH", f"/repos/{_q(owner)}/{_q(name)}/pulls/{number}", {"state": "closed"})

    def delete_branch(self, owner: str, name: str, branch: str) -> None:
        """Delete ``branch`` (a merged pull request's); one already gone is fine."""
        self.call("DELETE", f"/repos/{_q(owner)}/{_q(name)}/branches/{_q(branch)}", missing_ok=True)

    def branch_protection(self, owner: str, name: str, branch: str) -> dict[str, Any] | None:
        """Gitea's protection of ``branch`` as it answers it (fields as in ``BranchRule.settings``), or None."""
        return self.call("GET", f"/repos/{_q(owner)}/{_q(name)}/branch_protections/{_q(branch)}", missing_ok=True)

    def pull_request(self, owner: str, name: str, number: int) -> PullRequest:
        data = self.call("GET", f"/repos/{_q(owner)}/{_q(name)}/pulls/{number}")
        return _pull(data, self.reviews(owner, name, number))

    def pull_requests(self, owner: str, name: str, state: str = "all", with_reviews: bool = True) -> list[PullRequest]:
        """The repository's pull requests (newest first), with their reviews unless told not to."""
        out: list[PullRequest] = []
        page = 1
        while True:
            batch = self.call(
                "GET", f"/repos/{_q(owner)}/{_q(name)}/pulls?state={state}&sort=newest&limit=50&page={page}"
            )
            for data in batch or []:
                number = int(data["number"])
                out.append(_pull(data, self.reviews(owner, name, number) if with_reviews else ()))
            if not batch or len(batch) < 50:
                return out
            page += 1

    def pull_request_files(self, owner: str, name: str, number: int) -> list[str]:
        """The paths the pull request changes (its head against its base)."""
        out: list[str] = []
        page = 1
        while True:
            batch = self.call("GET", f"/repos/{_q(owner)}/{_q(name)}/pulls/{number}/files?limit=50&page={page}")
            out += [f["filename"] for f in batch or [] if f.get("filename")]
            if not batch or len(batch) < 50:
                return out
            page += 1

    def reviews(self, owner: str, name: str, number: int) -> tuple[Review, ...]:
        """The reviews given (not dismissed). Gitea lists a pending review request there too, as a review in
        state REQUEST_REVIEW: that is no review, and is read from the pull request's ``requested_reviewers``."""
        data = self.call("GET", f"/repos/{_q(owner)}/{_q(name)}/pulls/{number}/reviews") or []
        return tuple(_review(r) for r in data if not r.get("dismissed") and r.get("state") != "REQUEST_REVIEW")

    def request_reviewers(self, owner: str, name: str, number: int, users: list[str]) -> list[str]:
        """Ask ``users`` to review the pull request, unless already asked or already reviewed; who was asked now.

        Gitea refuses (422) a user who cannot read the repository, and the pull request's author.
        """
        pr = self.pull_request(owner, name, number)
        done = set(pr.requested_reviewers) | set(pr.reviewers)
        new = [u for u in users if u not in done]
        if new:
            self.call("POST", f"/repos/{_q(owner)}/{_q(name)}/pulls/{number}/requested_reviewers", {"reviewers": new})
        return new

    def review(self, owner: str, name: str, number: int, event: str, body: str = "") -> Review:
        """Submit a review as this account: ``APPROVED``, ``REQUEST_CHANGES`` or ``COMMENT``.

        Gitea refuses (422) an approval or a change request by the pull request's author.
        """
        if event not in ("APPROVED", "REQUEST_CHANGES", "COMMENT"):
            raise ValueError(f"unknown review event {event!r}")
        data = self.call(
            "POST", f"/repos/{_q(owner)}/{_q(name)}/pulls/{number}/reviews", {"event": event, "body": body}
        )
        return _review(data)

    def merge(self, owner: str, name: str, number: int, message: str = "", force: bool = False) -> PullRequest:
        """Merge the pull request (a merge commit) as this account; a merged one is left as it is.

        Gitea refuses (405) while the branch rule is not met; that refusal is
        raised at once. Only "try again later" (its mergeability check not done
        yet) is waited out, within the deadline. ``force`` merges past the rule,
        which Gitea allows only to an account on the rule's bypass allowlist.
        A merge whose answer was lost (Gitea unreachable meanwhile) is asked
        about once more: merged after all is a merge.
        """
        path = f"/repos/{_q(owner)}/{_q(name)}/pulls/{number}/merge"
        deadline = time.monotonic() + within_deadline(MERGE_SETTLE_SECONDS)
        pr = self.pull_request(owner, name, number)
        while not pr.merged:
            try:
                body = {"do": "merge", "merge_message_field": message, "head_commit_id": pr.head_sha}
                self.call("POST", path, {**body, "force_merge": True} if force else body)
            except ForgeError as exc:
                if exc.status is None:
                    pr = self._merged_after_all(owner, name, number, exc)  # the answer was lost: was the merge?
                    if pr.merged:
                        break
                    if time.monotonic() > deadline:
                        raise
                    continue  # not merged (the lost answer may have been a refusal): ask again, as for "later"
                settling = exc.status == 405 and "try again later" in exc.message.lower()
                if not settling or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            pr = self.pull_request(owner, name, number)
        return pr

    def _merged_after_all(self, owner: str, name: str, number: int, lost: ForgeError) -> PullRequest:
        """The pull request as Gitea has it, after the answer to its merge (``lost``) was lost; when Gitea does not
        answer that either (it went away), a ForgeError that says the merge may or may not have happened."""
        try:
            return self.pull_request(owner, name, number)
        except ForgeError as exc:
            raise ForgeError(
                f"{lost.message}, and then {exc.message}: whether Gitea merged pull request #{number} is not known",
                fix=f"once Gitea answers again (`curl {self.base_url}/api/healthz`), run the command again: it asks "
                "Gitea whether the pull request is merged, and merges it or finishes the merge",
            ) from exc

    # ----------------------------------------------------------- statuses
    def post_status(
        self, owner: str, name: str, sha: str, state: str, context: str, description: str = "", target_url: str = ""
    ) -> None:
        """Post a commit status (one of ``STATUS_STATES``) on ``sha``."""
        # checked here: Gitea stores an unknown state as it is given, and shows it as nothing
        if state not in STATUS_STATES:
            raise ValueError(f"unknown commit status state {state!r}; one of {', '.join(STATUS_STATES)}")
        self.call(
            "POST",
            f"/repos/{_q(owner)}/{_q(name)}/statuses/{sha}",
            {"state": state, "context": context, "description": description[:255], "target_url": target_url},
        )

    def statuses(self, owner: str, name: str, ref: str) -> dict[str, str]:
        """The latest status of each context on ``ref`` (a commit, branch or tag): {context: state}."""
        data = self.call("GET", f"/repos/{_q(owner)}/{_q(name)}/commits/{_q(ref)}/status") or {}
        return {s["context"]: s["status"] for s in data.get("statuses") or []}


def _message(exc: urllib.error.HTTPError) -> str:
    """Gitea's own message in an error answer (its JSON ``message``), else the body or the reason; one line."""
    try:
        text = exc.read().decode("utf-8", "replace")
        said = json.loads(text).get("message") or text
    except (ValueError, AttributeError, OSError, http.client.HTTPException):
        said = exc.reason
    return _said(said)


def _said(what: object) -> str:
    return " ".join(str(what).split())[:300]


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _same(current: Any, wanted: Any) -> bool:
    """Whether Gitea's answer already says what was asked: a null list is empty, lists in any order."""
    if isinstance(wanted, list):
        return sorted(current or []) == sorted(wanted)
    return current == wanted

"""The forge adapter (adapters/forge) against a real Gitea, built from its pinned module by the testbed.

Seeding through Gitea's API and CLI, what Gitea enforces (pushes to another
learner's repository, approving one's own pull request, merging before an
approver's review, changing prod's files without a pull request), commit
statuses on a pull request's head, and a push webhook delivered over HTTP.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.server
import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from gitops_lab.adapters.forge.gitea import BranchRule, GiteaAPI
from gitops_lab.adapters.forge.seed import (
    ForgeAccounts,
    LabRepository,
    gitea_cli_admin_creator,
    load_or_create_accounts,
    new_account,
    seed_lab,
)
from gitops_lab.errors import ForgeError
from helpers.gitutil import git, identity_env
from testbed.processes import wait_until

PROD = "overlays/prod/kustomization.yaml"
# prod changes only through an approved pull request; dev and staging may be pushed
RULE = BranchRule(branch="main", required_approvals=1, push_files="overlays/dev/**;overlays/staging/**")


def _push_url(base: str, account, owner: str, repo: str = "lab") -> str:
    host = base.removeprefix("http://")
    return f"http://{account.username}:{account.password}@{host}/{owner}/{repo}.git"


def _commit(work: Path, path: str, text: str, message: str) -> str:
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_text(text)
    git(work, "add", path)
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD")


def _ls_remote(url: str) -> str:
    return subprocess.run(
        ["git", "ls-remote", "--heads", url], capture_output=True, text=True, env=identity_env(), timeout=60, check=True
    ).stdout.strip()


def _push(work: Path, url: str, refspec: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(work), "push", url, refspec],
        capture_output=True,
        text=True,
        env=identity_env(),
        timeout=60,
    )


@pytest.fixture(scope="module")
def forge(testbed_gitea, tmp_path_factory):
    """The lab seeded on the session's Gitea in the order `up` needs: accounts (kept in a 0600 file) and
    repository; the first commit (dev and prod overlays) pushed by the learner; then the branch rule."""
    path = tmp_path_factory.mktemp("forge") / "forge-credentials.json"
    accounts = load_or_create_accounts(path, reviewers=("rita",))
    create = gitea_cli_admin_creator(testbed_gitea.cli())
    first = seed_lab(testbed_gitea.url, accounts, create, LabRepository("lab"))
    w = tmp_path_factory.mktemp("first")
    _init(w)
    _commit(w, "overlays/dev/kustomization.yaml", "dev: 1\n", "dev 1")
    _commit(w, PROD, "prod: 1\n", "prod 1")
    pushed = _push(w, _push_url(testbed_gitea.url, accounts.learner, accounts.learner.username), "HEAD:refs/heads/main")
    assert pushed.returncode == 0, pushed.stderr
    protected = seed_lab(testbed_gitea.url, accounts, create, LabRepository("lab", rule=RULE))
    return dataclasses.make_dataclass("Forge", ["gitea", "accounts", "path", "create", "first", "protected"])(
        testbed_gitea, accounts, path, create, first, protected
    )


def _init(w: Path) -> None:
    git(w, "init", "-q", "-b", "main")
    git(w, "config", "user.name", "Lea Learner")
    git(w, "config", "user.email", "learner@example.invalid")


@pytest.fixture
def work(tmp_path, forge):
    """A working copy of the learner's lab repository, on main."""
    w = tmp_path / "work"
    w.mkdir()
    _init(w)
    git(w, "fetch", "-q", _push_url(forge.gitea.url, forge.accounts.learner, forge.accounts.learner.username), "main")
    git(w, "reset", "-q", "--hard", "FETCH_HEAD")
    return w


def test_seeding_makes_everything_once_and_changes_nothing_the_second_time(forge):
    acc = forge.accounts
    assert stat.S_IMODE(os.stat(forge.path).st_mode) == 0o600
    assert f"created admin account {acc.admin.username}" in forge.first
    assert f"created account {acc.learner.username}" in forge.first
    assert f"created repository {acc.learner.username}/lab" in forge.first
    assert f"gave rita read access to {acc.learner.username}/lab" in forge.first
    assert forge.protected == [
        f"gave {acc.admin.username} admin access to {acc.learner.username}/lab",
        f"protected {acc.learner.username}/lab branch main",
    ]

    again = load_or_create_accounts(forge.path, reviewers=("rita",))
    assert again == acc  # the kept secrets, not new ones
    assert seed_lab(forge.gitea.url, again, forge.create, LabRepository("lab", rule=RULE)) == []

    api = GiteaAPI(forge.gitea.url, acc.admin)
    repo = api.repository(acc.learner.username, "lab")
    assert repo is not None and repo["private"] is True
    rule = api.call("GET", f"/repos/{acc.learner.username}/lab/branch_protections/main")
    assert rule["required_approvals"] == 1
    assert rule["approvals_whitelist_username"] == ["rita"]
    # the admin alone may merge past the rule (an emergency rollback); Gitea keeps it there only with write access
    assert (rule["enable_bypass_allowlist"], rule["bypass_allowlist_usernames"]) == (True, [acc.admin.username])
    assert rule["enable_push"] is False
    assert rule["unprotected_file_patterns"] == "overlays/dev/**;overlays/staging/**"
    # the learner's own password works; the engine may read but not push
    assert GiteaAPI(forge.gitea.url, acc.learner).whoami()["login"] == acc.learner.username
    perm = api.call("GET", f"/repos/{acc.learner.username}/lab/collaborators/engine/permission")
    assert perm["permission"] == "read"


def test_a_wrong_kept_admin_password_is_refused_with_the_fix(forge):
    wrong = dataclasses.replace(forge.accounts, admin=dataclasses.replace(forge.accounts.admin, password="not-it-1234"))
    with pytest.raises(ForgeError) as info:
        seed_lab(forge.gitea.url, wrong, forge.create, LabRepository("lab"))
    assert "gitops-admin" in info.value.message
    assert "change-password" in (info.value.fix or "")


def test_an_account_made_elsewhere_is_refused_not_taken_over(forge):
    # another lab on the same Gitea kept a different password for "rita": seeding must not reset it
    elsewhere = dataclasses.replace(forge.accounts, reviewers=(new_account("rita"),))
    with pytest.raises(ForgeError) as info:
        seed_lab(forge.gitea.url, elsewhere, forge.create, LabRepository("lab"))
    assert "'rita' exists but does not answer to the password kept" in info.value.message
    assert "change-password --username rita" in (info.value.fix or "")
    # the account still answers to its own password
    assert GiteaAPI(forge.gitea.url, forge.accounts.reviewers[0]).whoami()["login"] == "rita"


def test_a_learner_cannot_push_to_another_learners_repository(forge, tmp_path):
    acc = forge.accounts
    other: ForgeAccounts = dataclasses.replace(acc, learner=new_account("olga"), reviewers=())
    seed_lab(forge.gitea.url, other, forge.create, LabRepository("lab"))
    with pytest.raises(ForgeError) as early:  # a rule before the first commit would refuse that commit
        seed_lab(forge.gitea.url, other, forge.create, LabRepository("lab", rule=RULE))
    assert "no commit" in early.value.message and "first commit" in (early.value.fix or "")
    work = tmp_path / "w"
    work.mkdir()
    _init(work)
    sha = _commit(work, "README.md", "mine\n", "first")

    refused = _push(work, _push_url(forge.gitea.url, acc.learner, "olga"), "HEAD:refs/heads/main")
    assert refused.returncode != 0
    olgas = _push_url(forge.gitea.url, other.learner, "olga")
    assert _ls_remote(olgas) == ""  # nothing landed

    own = _push(work, olgas, "HEAD:refs/heads/main")
    assert own.returncode == 0, own.stderr
    assert _ls_remote(olgas) == f"{sha}\trefs/heads/main"


def test_a_pull_request_needs_an_approver_and_not_its_author(forge, work):
    acc = forge.accounts
    owner = acc.learner.username
    learner = GiteaAPI(forge.gitea.url, acc.learner)
    rita = learner.as_user(acc.reviewers[0])
    url = _push_url(forge.gitea.url, acc.learner, owner)

    # prod's files do not change by a plain push to main ...
    _commit(work, PROD, "prod: 2\n", "promote prod to 2")
    direct = _push(work, url, "HEAD:refs/heads/main")
    assert direct.returncode != 0
    assert "protected" in direct.stderr.lower()
    # ... while others still do
    git(work, "reset", "-q", "--hard", "HEAD~1")
    _commit(work, "overlays/dev/kustomization.yaml", "dev: 2\n", "dev 2")
    assert _push(work, url, "HEAD:refs/heads/main").returncode == 0

    # ... only through a pull request
    git(work, "checkout", "-q", "-b", "promote-prod")
    head = _commit(work, PROD, "prod: 2\n", "promote prod to 2")
    assert _push(work, url, "HEAD:refs/heads/promote-prod").returncode == 0
    pr = learner.open_pull_request(owner, "lab", "promote-prod", "main", "Promote prod to 2", "gates passed")
    assert pr.head_sha == head and pr.author == owner
    assert learner.open_pull_request(owner, "lab", "promote-prod", "main", "again", "").number == pr.number

    with pytest.raises(ForgeError) as own:
        learner.review(owner, "lab", pr.number, "APPROVED", "lgtm")
    assert own.value.status == 422 and "your own" in own.value.message
    with pytest.raises(ForgeError) as early:
        learner.merge(owner, "lab", pr.number, "promote prod")
    assert early.value.status == 405
    assert not learner.pull_request(owner, "lab", pr.number).merged

    # an approval by someone outside approvers (the engine's account may read, so it may review) does not count
    learner.as_user(acc.engine).review(owner, "lab", pr.number, "APPROVED", "not mine to approve")
    with pytest.raises(ForgeError) as outsider:
        learner.merge(owner, "lab", pr.number, "promote prod")
    assert outsider.value.status == 405

    rita.review(owner, "lab", pr.number, "APPROVED", "looks right")
    merged = learner.merge(owner, "lab", pr.number, "promote prod")
    assert merged.merged and merged.merge_sha
    assert learner.merge(owner, "lab", pr.number).merge_sha == merged.merge_sha  # a second merge changes nothing

    listed = {p.number: p for p in learner.pull_requests(owner, "lab")}
    assert listed[pr.number].merged and listed[pr.number].approvers == ["rita"]
    assert listed[pr.number].reviewers == ["engine", "rita"]
    git(work, "fetch", "-q", url, "main")
    assert git(work, "show", f"FETCH_HEAD:{PROD}") == "prod: 2"


def test_commit_statuses_show_on_the_pull_requests_head(forge, work):
    acc = forge.accounts
    owner = acc.learner.username
    learner = GiteaAPI(forge.gitea.url, acc.learner)
    url = _push_url(forge.gitea.url, acc.learner, owner)
    git(work, "checkout", "-q", "-b", "try-statuses")
    _commit(work, "overlays/dev/kustomization.yaml", "dev: statuses\n", "dev statuses")
    assert _push(work, url, "HEAD:refs/heads/try-statuses").returncode == 0
    pr = learner.open_pull_request(owner, "lab", "try-statuses", "main", "Statuses", "")

    learner.post_status(owner, "lab", pr.head_sha, "success", "gates/model-eval", "accuracy 0.93 >= 0.90")
    learner.post_status(owner, "lab", pr.head_sha, "failure", "gates/policy", "image not pinned")
    learner.post_status(owner, "lab", pr.head_sha, "success", "gates/policy", "fixed")  # the latest one counts

    assert learner.statuses(owner, "lab", pr.head_sha) == {"gates/model-eval": "success", "gates/policy": "success"}
    assert learner.statuses(owner, "lab", "try-statuses") == learner.statuses(owner, "lab", pr.head_sha)
    assert "gates/policy" not in learner.statuses(owner, "lab", "main")
    with pytest.raises(ValueError):  # Gitea would store it and show nothing
        learner.post_status(owner, "lab", pr.head_sha, "bogus", "gates/policy")


class _Receiver:
    """A loopback HTTP endpoint that keeps every POST (headers and body)."""

    def __init__(self):
        self.posts: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/push"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_push_is_announced_to_the_webhook_signed_with_the_kept_secret(forge, work):
    acc = forge.accounts
    owner = acc.learner.username
    receiver = _Receiver()
    try:
        repo = LabRepository("lab", rule=RULE, webhook_url=receiver.url)
        assert seed_lab(forge.gitea.url, acc, forge.create, repo) == [
            f"added a push webhook of {owner}/lab to {receiver.url}"
        ]
        assert seed_lab(forge.gitea.url, acc, forge.create, repo) == []

        url = _push_url(forge.gitea.url, acc.learner, owner)
        sha = _commit(work, "overlays/dev/kustomization.yaml", "dev: webhook\n", "dev webhook")
        assert _push(work, url, "HEAD:refs/heads/main").returncode == 0

        def delivered():
            for headers, body in receiver.posts:
                event = json.loads(body)
                if event.get("after") == sha:
                    return headers, body, event
            return None

        headers, body, event = wait_until("the push webhook's delivery", delivered, 60, forge.gitea.check_health)
        assert headers.get("X-Gitea-Event") == "push"
        assert event["ref"] == "refs/heads/main"
        assert event["repository"]["full_name"] == f"{owner}/lab"
        expected = hmac.new(acc.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers.get("X-Gitea-Signature") == expected
    finally:
        receiver.stop()


def test_a_changed_rule_is_edited_in_place_and_changed_back(forge):
    acc = forge.accounts
    api = GiteaAPI(forge.gitea.url, acc.admin)
    stricter = LabRepository("lab", rule=dataclasses.replace(RULE, required_approvals=2))
    try:
        assert seed_lab(forge.gitea.url, acc, forge.create, stricter) == [
            f"protected {acc.learner.username}/lab branch main"
        ]
        assert api.call("GET", f"/repos/{acc.learner.username}/lab/branch_protections/main")["required_approvals"] == 2
        assert seed_lab(forge.gitea.url, acc, forge.create, stricter) == []
    finally:
        seed_lab(forge.gitea.url, acc, forge.create, LabRepository("lab", rule=RULE))
    assert api.call("GET", f"/repos/{acc.learner.username}/lab/branch_protections/main")["required_approvals"] == 1
    assert len(api.call("GET", f"/repos/{acc.learner.username}/lab/branch_protections")) == 1  # edited, not added

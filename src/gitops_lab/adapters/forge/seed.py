"""Seed a lab on Gitea: its accounts, the lab repository, who may read and review
it, its branch rule and its push webhook, from generated secrets kept 0600.

Running it again changes nothing: every step reads first (gitea.py's
``ensure_*``), and the secrets are generated once and reused. The order is:
seed, push the lab's first commit, seed again with the branch rule (Gitea
refuses a branch's first push once the branch is protected).

The admin account cannot be made through the API (that needs an admin), so it
is made with Gitea's own CLI against the instance's configuration
(``gitea admin user create``), through a command the caller gives: the binary
on a host, or ``kubectl exec`` into Gitea's pod.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.forge.gitea import (
    PUSH_SETTLE_SECONDS,
    READY_PROBE_SECONDS,
    Account,
    BranchRule,
    GiteaAPI,
)
from gitops_lab.adapters.gitserver.credentials import new_password
from gitops_lab.errors import ForgeError, UsageError, WaitTimeout
from gitops_lab.deadline import within_deadline
from gitops_lab.processes import run_bounded
from gitops_lab.state import write_private_json

CREDENTIALS_FILE = "forge-credentials.json"
EMAIL_DOMAIN = "gitops-lab.invalid"  # never delivered: Gitea's mailer is off
ADMIN_CLI_SECONDS = 60.0
# How long seeding waits for a Gitea that is starting (a new one migrates its database first: about 5 s
# measured, docs/forge.md) before it says so; the command's deadline bounds it too.
READY_SECONDS = 120.0
READY_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class ForgeAccounts:
    """Every account of a lab's forge, and the secret its webhooks are signed with."""

    admin: Account
    learner: Account
    reviewers: tuple[Account, ...]  # may approve the learner's pull requests
    engine: Account  # reads the repository for Argo CD or Flux
    webhook_secret: str
    # a class's learners, each owning their ``<learner>/lab`` and reviewing classmates' (class reviews assign)
    learners: tuple[Account, ...] = ()

    def to_dict(self) -> dict:
        data = {
            "admin": self.admin.to_dict(),
            "learner": self.learner.to_dict(),
            "reviewers": [r.to_dict() for r in self.reviewers],
            "engine": self.engine.to_dict(),
            "webhook_secret": self.webhook_secret,
        }
        # written only when there are some: a lab's file stays as it was
        return {**data, "learners": [a.to_dict() for a in self.learners]} if self.learners else data

    def class_learner(self, name: str) -> Account | None:
        """The account of the class learner ``name`` (or of the lab's one learner), or None."""
        return next((a for a in (*self.learners, self.learner) if a.username == name), None)

    @classmethod
    def from_dict(cls, data: dict) -> ForgeAccounts:
        return cls(
            admin=Account(**data["admin"]),
            learner=Account(**data["learner"]),
            reviewers=tuple(Account(**r) for r in data["reviewers"]),
            engine=Account(**data["engine"]),
            webhook_secret=data["webhook_secret"],
            learners=tuple(Account(**a) for a in data.get("learners") or []),
        )


def read_accounts(path: Path) -> ForgeAccounts:
    """The accounts a seeding kept in ``path``; a missing or foreign file is a usage error naming it."""
    fix = "pass --forge-credentials the file the forge was seeded with (forge-credentials.json)"
    try:
        return ForgeAccounts.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise UsageError(f"cannot read the forge credentials file {path}: {exc.strerror or exc}", fix=fix) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"the forge credentials file {path} is not one seeding wrote ({exc})", fix=fix) from exc


def new_account(username: str) -> Account:
    return Account(username, new_password(), f"{username}@{EMAIL_DOMAIN}")


def load_or_create_accounts(
    path: Path,
    learner: str = "learner",
    reviewers: Sequence[str] = ("reviewer",),
    admin: str = "gitops-admin",
    engine: str = "engine",
    learners: Sequence[str] = (),
) -> ForgeAccounts:
    """The accounts kept in ``path`` (0600), generated on first use; a reviewer or class learner named now and
    not yet kept is added.

    ``admin`` must not be ``admin``: Gitea reserves that name.
    """
    try:
        kept: ForgeAccounts | None = ForgeAccounts.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        kept = None
    except (KeyError, TypeError, ValueError) as exc:
        raise ForgeError(
            f"the forge credentials file {path} is damaged ({exc})",
            fix=f"restore it from a backup, or delete it and reset the accounts' passwords in Gitea; it is {path}",
        ) from exc
    if kept is None:
        kept = ForgeAccounts(
            admin=new_account(admin),
            learner=new_account(learner),
            reviewers=tuple(new_account(r) for r in reviewers),
            engine=new_account(engine),
            webhook_secret=secrets.token_hex(20),
            learners=tuple(new_account(n) for n in learners),
        )
    else:
        missing = [r for r in reviewers if r not in {a.username for a in kept.reviewers}]
        missing_learners = [n for n in learners if n not in {a.username for a in kept.learners}]
        if not missing and not missing_learners:
            return kept
        kept = dataclasses.replace(
            kept,
            reviewers=kept.reviewers + tuple(new_account(r) for r in missing),
            learners=kept.learners + tuple(new_account(n) for n in missing_learners),
        )
    write_private_json(path, kept.to_dict(), mode=0o600)
    return kept


AdminCreator = Callable[[Account], None]


def admin_create_arguments(admin: Account) -> list[str]:
    """Gitea's CLI arguments that make ``admin`` a site admin with its kept password, no change forced."""
    return [
        "admin",
        "user",
        "create",
        "--admin",
        "--username",
        admin.username,
        "--password",
        admin.password,
        "--email",
        admin.email,
        "--must-change-password=false",
    ]


def gitea_cli_admin_creator(gitea_command: Sequence[str]) -> AdminCreator:
    """Make the admin with ``<gitea_command> admin user create``.

    ``gitea_command`` runs Gitea's binary against the instance's configuration,
    e.g. ``[gitea, "--config", app.ini, "--work-path", dir]``. The password is
    on that command line: it runs on Gitea's own host or pod, once.
    """

    def create(admin: Account) -> None:
        cmd = [*gitea_command, *admin_create_arguments(admin)]
        timeout = within_deadline(ADMIN_CLI_SECONDS)
        try:
            done = run_bounded(cmd, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise WaitTimeout(f"`gitea admin user create` did not finish in {timeout:.0f}s") from exc
        except OSError as exc:
            raise ForgeError(f"cannot run Gitea's CLI ({gitea_command[0]}): {exc.strerror or exc}") from exc
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise ForgeError(
                f"`gitea admin user create --username {admin.username}` failed: {said[-1] if said else done.returncode}",
                fix=(
                    f"if the account exists with another password, set the kept one with `gitea admin user "
                    f"change-password --username {admin.username} --password ...`; then seed again"
                ),
            )

    return create


def ensure_admin(base_url: str, admin: Account, create_admin: AdminCreator) -> bool:
    """Make the admin account exist with its kept password; whether it was made now."""
    api = GiteaAPI(base_url, admin)
    me = api.whoami()
    created = False
    if me is None:
        create_admin(admin)
        created = True
        me = api.whoami()
        if me is None:
            raise ForgeError(
                f"Gitea does not accept the kept password of its admin account {admin.username!r}",
                fix=f"set it with `gitea admin user change-password --username {admin.username}`, then seed again",
            )
    if not me.get("is_admin"):
        raise ForgeError(
            f"Gitea account {admin.username!r} is not an admin",
            fix=f"make it one with `gitea admin user edit --username {admin.username} --admin` (or in Site Administration)",
        )
    return created


@dataclass(frozen=True)
class LabRepository:
    """The lab repository, owned by the learner: private, read by the engine and the reviewers."""

    name: str = "lab"
    # its approvers are filled in from the reviewers; set only once the branch has a commit
    rule: BranchRule | None = None
    webhook_url: str | None = None  # where pushes are announced (an engine's webhook endpoint)


def wait_until_ready(base_url: str, seconds: float = READY_SECONDS) -> None:
    """Wait until Gitea's ``/api/healthz`` says it is ready: at most ``seconds`` and the command's deadline.

    A Gitea just started refuses connections, then answers 503 while its database is not ready; one that
    never gets ready is said in one line naming its URL and what it last answered.
    """
    api = GiteaAPI(base_url, Account("", "", ""))  # /api/healthz needs no account
    deadline = time.monotonic() + within_deadline(seconds)
    why = "the command's time ran out before it was asked"
    while True:
        left = deadline - time.monotonic()
        if left > 0:
            why = api.ready(min(READY_PROBE_SECONDS, left)) or ""
            if not why:
                return
        if time.monotonic() + READY_POLL_SECONDS >= deadline:
            raise WaitTimeout(
                f"Gitea at {api.base_url} is not ready ({why})",
                fix="wait until it has started (its log says when it listens), then run the command again",
            )
        time.sleep(READY_POLL_SECONDS)


def seed_lab(base_url: str, accounts: ForgeAccounts, create_admin: AdminCreator, repo: LabRepository) -> list[str]:
    """Make the lab's accounts, repository, grants, branch rule and webhook exist; return what changed, in words.

    A Gitea still starting is waited for first (``wait_until_ready``), within the command's deadline.
    """
    wait_until_ready(base_url)
    changes: list[str] = []
    if ensure_admin(base_url, accounts.admin, create_admin):
        changes.append(f"created admin account {accounts.admin.username}")
    api = GiteaAPI(base_url, accounts.admin)
    for account in (accounts.learner, *accounts.reviewers, accounts.engine):
        if api.ensure_user(account):
            changes.append(f"created account {account.username}")
    owner = accounts.learner.username
    full = f"{owner}/{repo.name}"
    if api.ensure_repository(owner, repo.name, private=True):
        changes.append(f"created repository {full}")
    for account in (*accounts.reviewers, accounts.engine):
        if api.ensure_collaborator(owner, repo.name, account.username, "read"):
            changes.append(f"gave {account.username} read access to {full}")
    if repo.rule is not None:
        # The admin alone may merge past the rule: the tool does so only for an emergency rollback.
        rule = dataclasses.replace(
            repo.rule, approvers=tuple(r.username for r in accounts.reviewers), bypass=(accounts.admin.username,)
        )
        # Gitea cannot tell which files a branch's first push touches (it has no
        # commit to compare with) and refuses it with a 500 once the branch is
        # protected: so the rule comes after the lab's first commit.
        if not api.has_branch(owner, repo.name, rule.branch, settle=PUSH_SETTLE_SECONDS):
            raise ForgeError(
                f"cannot protect branch {rule.branch} of {full} yet: it has no commit, and Gitea refuses "
                "a branch's first push once it is protected",
                fix=f"push the lab's first commit to {rule.branch}, then seed again",
            )
        # Gitea keeps on a bypass allowlist only accounts with write access of their own (being a site
        # admin is not that).
        if api.ensure_collaborator(owner, repo.name, accounts.admin.username, "admin"):
            changes.append(f"gave {accounts.admin.username} admin access to {full}")
        if api.ensure_branch_rule(owner, repo.name, rule):
            changes.append(f"protected {full} branch {rule.branch}")
    if repo.webhook_url and api.ensure_push_webhook(owner, repo.name, repo.webhook_url, accounts.webhook_secret):
        changes.append(f"added a push webhook of {full} to {repo.webhook_url}")
    return changes

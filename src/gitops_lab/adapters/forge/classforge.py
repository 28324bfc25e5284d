"""A class on Gitea, through its API: one organisation per class, every learner's repositories in it.

The organisation is named after the class and is private. The instructor is
Gitea's site admin (made by Gitea's own CLI, seed.py ``ensure_admin``) and the
organisation's owner. Each learner has an account with the password the class
keeps for them, and their repositories ``<org>/<learner>`` (the lab) and
``<org>/<learner>-ml-platform-pipelines``, where they are the one write
collaborator. One team, ``classmates``, reads every repository of the
organisation: every learner of the class is in it (so classmates can read and
review each other's work) and so is the engines' account. A learner who leaves
the class leaves the team and loses their write grants.

Running it again changes nothing: every step reads first, and says what it changed.
The accounts are also written, 0600, as the forge's credentials file (seed.py's
format), which `class reviews assign`, `class status` and `class report` read.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gitops_lab.adapters.forge.gitea import Account, GiteaAPI
from gitops_lab.adapters.forge.seed import EMAIL_DOMAIN, AdminCreator, ForgeAccounts, ensure_admin, wait_until_ready
from gitops_lab.adapters.gitserver.credentials import Credentials
from gitops_lab.errors import ForgeError, UsageError
from gitops_lab.state import write_private_json

CLASS_TEAM = "classmates"
# What the classmates team may do in every repository of the organisation: read the code, open and
# review pull requests (a review needs only read access), read issues.
TEAM_UNITS = {"repo.code": "read", "repo.pulls": "read", "repo.issues": "read", "repo.releases": "read"}
PAGE = 50
# Gitea's rule for user and organisation names (its AlphaDashDot, no leading or trailing dash or dot), 40 at most.
ORG_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,38}[A-Za-z0-9])?")


def class_organisation(class_name: str) -> str:
    """The organisation of the class ``class_name`` on its Gitea: the class's own name."""
    if not ORG_NAME.fullmatch(class_name) or ".." in class_name:
        raise UsageError(
            f"the class name {class_name!r} cannot name a Gitea organisation (letters, digits, '-', '_', '.', "
            "at most 40, starting and ending with a letter or digit)",
            fix="use a shorter or plainer --name for a class on Gitea",
        )
    return class_name


def account(creds: Credentials) -> Account:
    return Account(creds.username, creds.password, f"{creds.username}@{EMAIL_DOMAIN}")


@dataclass(frozen=True)
class ClassAccounts:
    """A class's accounts on its Gitea: the instructor (site admin), the engines' reader, each learner."""

    instructor: Account
    engine: Account
    learners: tuple[Account, ...]

    def write(self, path: Path) -> None:
        """Keep them 0600 as a forge credentials file (seed.py ``ForgeAccounts``); the class has no lab learner
        of its own, so that slot holds the instructor. The webhook secret is kept across runs."""
        try:
            secret = str(json.loads(path.read_text(encoding="utf-8")).get("webhook_secret") or "")
        except (OSError, ValueError, AttributeError):
            secret = ""
        data = ForgeAccounts(
            admin=self.instructor,
            learner=self.instructor,
            reviewers=(),
            engine=self.engine,
            webhook_secret=secret or secrets.token_hex(20),
            learners=self.learners,
        ).to_dict()
        write_private_json(path, data, mode=0o600)


def provision_class(
    base_url: str,
    org: str,
    accounts: ClassAccounts,
    repositories: dict[str, str],
    create_admin: AdminCreator,
) -> list[str]:
    """Make the class exist on the Gitea at ``base_url``: ``repositories`` maps each repository of the class to
    the one learner who writes it. Whoever is not named loses access. Returns what changed, in words."""
    wait_until_ready(base_url)
    changes: list[str] = []
    if ensure_admin(base_url, accounts.instructor, create_admin):
        changes.append(f"created admin account {accounts.instructor.username}")
    api = GiteaAPI(base_url, accounts.instructor)
    for member in (accounts.engine, *accounts.learners):
        if api.ensure_user(member):
            changes.append(f"created account {member.username}")
    if api.call("GET", f"/orgs/{_q(org)}", missing_ok=True) is None:
        api.call("POST", "/orgs", {"username": org, "visibility": "private", "repo_admin_change_team_access": False})
        changes.append(f"created organisation {org}")
    team, created = _ensure_team(api, org)
    if created:
        changes.append(f"created team {org}/{CLASS_TEAM} (reads every repository)")
    members = {accounts.engine.username, *(a.username for a in accounts.learners)}
    current = {m["login"] for m in _pages(api, f"/teams/{team}/members")}
    for user in sorted(members - current):
        api.call("PUT", f"/teams/{team}/members/{_q(user)}")
        changes.append(f"added {user} to {org}/{CLASS_TEAM}")
    for user in sorted(current - members):
        api.call("DELETE", f"/teams/{team}/members/{_q(user)}")
        changes.append(f"removed {user} from {org}/{CLASS_TEAM}")
    for name, writer in sorted(repositories.items()):
        if api.repository(org, name) is None:
            api.call(
                "POST",
                f"/orgs/{_q(org)}/repos",
                {"name": name, "private": True, "auto_init": False, "default_branch": "main"},
            )
            changes.append(f"created repository {org}/{name}")
        if api.ensure_collaborator(org, name, writer, "write"):
            changes.append(f"gave {writer} write access to {org}/{name}")
    for repo in _pages(api, f"/orgs/{_q(org)}/repos"):
        name = repo["name"]
        for collaborator in _pages(api, f"/repos/{_q(org)}/{_q(name)}/collaborators"):
            login = collaborator["login"]
            if login != repositories.get(name):
                api.call("DELETE", f"/repos/{_q(org)}/{_q(name)}/collaborators/{_q(login)}")
                changes.append(f"took {login}'s access to {org}/{name} away")
    return changes


def remove_repositories(base_url: str, org: str, instructor: Account, names: list[str]) -> list[str]:
    """Delete ``names`` from the organisation; the ones that were there."""
    api = GiteaAPI(base_url, instructor)
    gone = []
    for name in names:
        if api.repository(org, name) is not None:
            api.call("DELETE", f"/repos/{_q(org)}/{_q(name)}")
            gone.append(name)
    return gone


def _ensure_team(api: GiteaAPI, org: str) -> tuple[int, bool]:
    """The classmates team's id, made (or set back) to read every repository; whether it was made."""
    want = {"permission": "read", "includes_all_repositories": True, "units_map": TEAM_UNITS}
    for team in _pages(api, f"/orgs/{_q(org)}/teams"):
        if team.get("name") == CLASS_TEAM:
            if team.get("permission") != "read" or not team.get("includes_all_repositories"):
                api.call("PATCH", f"/teams/{team['id']}", {"name": CLASS_TEAM, **want})
            return int(team["id"]), False
    made = api.call("POST", f"/orgs/{_q(org)}/teams", {"name": CLASS_TEAM, "can_create_org_repo": False, **want})
    if not isinstance(made, dict) or "id" not in made:
        raise ForgeError(f"Gitea made team {org}/{CLASS_TEAM} but did not say its id")
    return int(made["id"]), True


def _pages(api: GiteaAPI, path: str) -> Iterator[dict[str, Any]]:
    """Every item of a paged list."""
    page = 1
    while True:
        items = api.call("GET", f"{path}?limit={PAGE}&page={page}") or []
        yield from items
        if len(items) < PAGE:
            return
        page += 1


def _q(part: str) -> str:
    return quote(part, safe="")

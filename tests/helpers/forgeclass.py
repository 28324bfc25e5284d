"""A class's design pull requests on a real Gitea (the testbed's): each author's ``lab`` repository with the
pipeline-design document on a branch ``design``, and its pull request open, as each learner does it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from helpers.designdoc import AGREEING, push_design
from helpers.gitutil import git

from gitops_lab.adapters.forge.gitea import PUSH_SETTLE_SECONDS, GiteaAPI
from gitops_lab.adapters.forge.seed import ForgeAccounts, ensure_admin, gitea_cli_admin_creator, load_or_create_accounts


def open_design_pull_requests(base_url: str, accounts: ForgeAccounts, wc: Path, authors: tuple[str, ...]) -> dict:
    """Each author's design pull request number: ``wc``'s main and a ``design`` branch with the agreeing
    document, pushed to AUTHOR/lab as the author, the pull request opened by the author."""
    admin = GiteaAPI(base_url, accounts.admin)
    git(wc, "checkout", "-q", "-b", "design")
    push_design(wc, AGREEING, push=False)
    host = base_url.removeprefix("http://")
    pulls = {}
    for name in authors:
        account = accounts.class_learner(name)
        assert account is not None
        admin.ensure_user(account)
        admin.ensure_repository(name, "lab")
        git(wc, "push", "-q", f"http://{name}:{account.password}@{host}/{name}/lab.git", "main:main", "design:design")
        me = admin.as_user(account)
        assert me.has_branch(name, "lab", "design", settle=PUSH_SETTLE_SECONDS)  # Gitea records pushes from a queue
        pulls[name] = me.open_pull_request(name, "lab", "design", "main", "Pipeline design document", "").number
    return pulls


@dataclass(frozen=True)
class DesignClass:
    """A class set up on the forge by :func:`open_design_class`."""

    credentials: Path  # the forge-credentials file the CLI is given
    accounts: ForgeAccounts
    admin: GiteaAPI
    pulls: dict  # author -> design pull request number
    roster: Path  # the --learners file: the authors, then the learner not ready


def open_design_class(
    base_url: str, gitea_cli: list[str], wc: Path, folder: Path, prefix: str, authors: tuple[str, ...], not_ready: str
) -> DesignClass:
    """A class whose ``authors`` opened their design pull request and whose ``not_ready`` learner pushed nothing:
    accounts named ``PREFIX-…`` (the Gitea is shared by the session), their credentials and roster in ``folder``."""
    credentials = folder / "forge-credentials.json"
    accounts = load_or_create_accounts(
        credentials,
        learner=f"{prefix}-solo",
        reviewers=(),
        admin=f"{prefix}-admin",
        engine=f"{prefix}-engine",
        learners=(*authors, not_ready),
    )
    ensure_admin(base_url, accounts.admin, gitea_cli_admin_creator(gitea_cli))
    pulls = open_design_pull_requests(base_url, accounts, wc, authors)
    roster = folder / "learners.txt"
    roster.write_text("\n".join((*authors, not_ready)) + "\n", encoding="utf-8")
    return DesignClass(credentials, accounts, GiteaAPI(base_url, accounts.admin), pulls, roster)

"""`gitops-lab credentials`: the learner's logins to the lab's Git server, its forge (Gitea) and Argo CD's UI.

The one command that prints passwords: the learner's always, the forge's other accounts' only with
--all (a learner signs in as the learner and names reviewers; an instructor or a learner playing the
reviewer in the browser needs theirs: docs/forge.md, "Logins").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gitops_lab.cli.app import Application, output_option, pass_app, timeout_option


@click.command("credentials")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also the passwords of the forge's reviewer, admin and engine accounts (for an instructor).",
)
@output_option
@timeout_option(default=20, help="One deadline for reading Argo CD's admin password from the cluster.")
@pass_app
def command(app: Application, show_all: bool, output: str, timeout: float) -> None:
    """Print the learner's logins: the lab's Git server (kind), its forge (Gitea) and Argo CD's UI.

    The Git server's are generated per environment and kept in the state folder
    (mode 0600). The forge's come from the credentials file `repo init
    --forge-credentials` saved: Gitea's URL, the learner's account and password,
    and the reviewers' names (their passwords, and the admin's and engine's,
    with --all). With Argo CD, the UI's login too: `admin` and the password
    argocd-server generated, read from the Secret argocd-initial-admin-secret
    (when the cluster cannot be reached, the other logins still print, and
    the reason is given). Nothing else prints a password.

    \b
    Examples:
      gitops-lab credentials
      git clone http://localhost:8180/lab.git    # then enter them when asked
      gitops-lab credentials --all --output json
    """
    from gitops_lab.adapters.gitserver.credentials import credentials_path, load_or_create_credentials
    from gitops_lab.errors import NotFound

    state = app.state()
    forge = (
        (state.forge_url, state.forge_credentials) if state and state.forge_url and state.forge_credentials else None
    )
    has_git_server = credentials_path(app.name).is_file()
    # A learner of a class on a shared cluster has no admin login: the instructor holds it.
    argocd = state is not None and state.engine == "argocd" and state.tenant is None
    if not has_git_server and forge is None and not argocd:
        raise NotFound(
            f"the environment {app.name!r} has no Git server or forge credentials",
            fix=(
                "they exist after `gitops-lab up` on kind, or `gitops-lab repo init PATH --remote URL "
                "--forge-url URL --forge-credentials FILE` for a Gitea; with --provider existing use your own"
            ),
        )
    data: dict[str, Any] = {}
    texts: list[str] = []
    if has_git_server:
        writer = load_or_create_credentials(app.name).writer
        data.update(username=writer.username, password=writer.password)
        texts.append(f"username: {writer.username}\npassword: {writer.password}")
    if forge is not None:
        data["forge"], text = _forge_logins(forge[0], Path(forge[1]), show_all)
        texts.append(text)
    if argocd:
        data["argocd"], text = _argocd_login(app, timeout)
        texts.append(text)
    app.emit(output, data, "\n\n".join(texts))


def _argocd_login(app: Application, timeout: float) -> tuple[dict[str, Any], str]:
    """Argo CD UI's login, read from the cluster; a cluster that can't be read is said, not fatal."""
    from gitops_lab.adapters.engines.argocd import ArgoCD
    from gitops_lab.deadline import command_deadline
    from gitops_lab.errors import GitOpsLabError
    from gitops_lab.kube.client import connect

    try:
        with command_deadline(timeout):
            username, password = ArgoCD(connect(*app.cluster_access(None, None))).ui_login()
    except GitOpsLabError as exc:
        problem = exc.one_line()
        return {"username": "admin", "password": None, "problem": problem}, (
            f"Argo CD UI: username admin; the password could not be read: {problem}"
        )
    return {"username": username, "password": password}, f"Argo CD UI: username {username}, password {password}"


def _forge_logins(url: str, credentials: Path, show_all: bool) -> tuple[dict[str, Any], str]:
    """The forge's logins as JSON and as text: the learner's, the reviewers' names (all passwords with --all)."""
    from gitops_lab.adapters.forge.seed import read_accounts
    from gitops_lab.cli.output import format_table

    accounts = read_accounts(credentials)
    hidden = "(shown with --all)"
    rows: list[tuple[str, str, str]] = [("learner", accounts.learner.username, accounts.learner.password)]
    rows += [("reviewer", r.username, r.password if show_all else hidden) for r in accounts.reviewers]
    data: dict[str, Any] = {
        "url": url,
        "credentials_file": str(credentials),
        "learner": {"username": accounts.learner.username, "password": accounts.learner.password},
        "reviewers": [
            {"username": r.username, **({"password": r.password} if show_all else {})} for r in accounts.reviewers
        ],
    }
    if show_all:
        rows += [("class learner", a.username, a.password) for a in accounts.learners]
        rows += [("admin", accounts.admin.username, accounts.admin.password)]
        rows += [("engine", accounts.engine.username, accounts.engine.password)]
        data["learners"] = [{"username": a.username, "password": a.password} for a in accounts.learners]
        data["admin"] = {"username": accounts.admin.username, "password": accounts.admin.password}
        data["engine"] = {"username": accounts.engine.username, "password": accounts.engine.password}
    text = f"Gitea: {url} (sign in at {url}/user/login)\n" + format_table(("ROLE", "USERNAME", "PASSWORD"), rows)
    return data, text

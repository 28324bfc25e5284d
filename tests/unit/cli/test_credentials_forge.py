"""`gitops-lab credentials` on a lab with a forge: the learner's Gitea login, the reviewers' names,
every password only with --all; and no other command prints one (even when Gitea is down).

The forge is what `repo init --forge-url --forge-credentials` saved; printing needs no Gitea (the
credentials file is the source), so the URL here is a closed loopback port.
"""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from gitops_lab.adapters.forge.seed import ForgeAccounts, load_or_create_accounts


@pytest.fixture
def forge(tmp_path, cli) -> tuple[str, ForgeAccounts]:
    """(Gitea's URL, its accounts) saved in the lab's state by `repo init --forge-url`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed
    accounts = load_or_create_accounts(tmp_path / "forge-credentials.json", reviewers=("rita", "sam"))
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    init = cli(
        "repo", "init", str(tmp_path / "wc"), "--remote", str(remote),
        "--forge-url", url, "--forge-credentials", str(tmp_path / "forge-credentials.json"),
    )  # fmt: skip
    assert init.exit_code == 0, init.output
    _assert_no_password(init.output, accounts, shown=())
    return url, accounts


def _passwords(accounts: ForgeAccounts) -> dict[str, str]:
    every = (accounts.learner, *accounts.reviewers, *accounts.learners, accounts.admin, accounts.engine)
    return {a.username: a.password for a in every}


def _assert_no_password(output: str, accounts: ForgeAccounts, shown: tuple[str, ...]) -> None:
    for username, password in _passwords(accounts).items():
        assert (password in output) == (username in shown), f"{username}'s password shown: {username in shown}"


def test_a_learner_sees_their_gitea_login_and_the_reviewers_names_only(cli, forge):
    url, accounts = forge
    result = cli("credentials")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Gitea: {url} (sign in at {url}/user/login)"
    assert lines[2].split() == ["learner", "learner", accounts.learner.password]
    assert [line.split()[:2] for line in lines[3:]] == [["reviewer", "rita"], ["reviewer", "sam"]]
    assert all("--all" in line for line in lines[3:])
    _assert_no_password(result.output, accounts, shown=("learner",))


def test_json_has_the_forge_login_and_no_reviewer_password_without_all(cli, forge, tmp_path):
    url, accounts = forge
    result = cli("credentials", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == {
        "forge": {
            "url": url,
            "credentials_file": str((tmp_path / "forge-credentials.json").resolve()),
            "learner": {"username": "learner", "password": accounts.learner.password},
            "reviewers": [{"username": "rita"}, {"username": "sam"}],
        }
    }


def test_all_adds_every_forge_account_s_password_for_an_instructor(cli, forge):
    url, accounts = forge
    text = cli("credentials", "--all")
    assert text.exit_code == 0, text.output
    _assert_no_password(text.output, accounts, shown=tuple(_passwords(accounts)))
    rows = {tuple(line.split()[:2]): line.split()[2] for line in text.output.splitlines()[2:]}
    assert rows[("reviewer", "rita")] == accounts.reviewers[0].password
    assert rows[("admin", "gitops-admin")] == accounts.admin.password
    assert rows[("engine", "engine")] == accounts.engine.password
    data = json.loads(cli("credentials", "--all", "--output", "json").output)["forge"]
    assert data["reviewers"][1] == {"username": "sam", "password": accounts.reviewers[1].password}
    assert data["admin"] == {"username": "gitops-admin", "password": accounts.admin.password}
    assert data["engine"] == {"username": "engine", "password": accounts.engine.password}


def test_the_git_server_login_comes_first_as_before_then_the_forge(cli, forge):
    from gitops_lab.adapters.gitserver.credentials import load_or_create_credentials

    url, _ = forge
    writer = load_or_create_credentials("gitops-lab").writer  # what `up` keeps on kind
    result = cli("credentials")
    assert result.exit_code == 0, result.output
    git_server, gitea = result.output.split("\n\n")
    assert git_server == f"username: {writer.username}\npassword: {writer.password}"
    assert gitea.startswith(f"Gitea: {url} ")
    data = json.loads(cli("credentials", "--output", "json").output)
    assert (data["username"], data["password"], data["forge"]["url"]) == (writer.username, writer.password, url)


def test_a_damaged_forge_credentials_file_is_one_error_naming_it(cli, forge, tmp_path):
    (tmp_path / "forge-credentials.json").write_text("{}")
    result = cli("credentials")
    assert result.exit_code != 0
    assert "forge-credentials.json" in result.output and "Traceback" not in result.output


def test_without_any_credentials_the_error_names_both_ways_to_get_them(cli):
    result = cli("credentials")
    assert result.exit_code == 2
    assert "no Git server or forge credentials" in result.output
    assert "gitops-lab up" in result.output and "--forge-url" in result.output


def test_another_command_failing_on_a_down_gitea_names_it_and_prints_no_password(cli, forge):
    url, accounts = forge
    result = cli("history", "--env", "prod")
    assert result.exit_code != 0
    assert f"cannot reach Gitea at {url}" in result.output
    _assert_no_password(result.output, accounts, shown=())

"""The forge's kept secrets and its client's failures, without a Gitea (test_forge_gitea.py has the real one)."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from gitops_lab.adapters.forge.gitea import Account, GiteaAPI
from gitops_lab.adapters.forge.seed import gitea_cli_admin_creator, load_or_create_accounts
from gitops_lab.errors import ForgeError, WaitTimeout
from gitops_lab.deadline import command_deadline


def test_accounts_are_generated_once_kept_0600_and_reused(tmp_path):
    path = tmp_path / "state" / "forge-credentials.json"
    first = load_or_create_accounts(path, reviewers=("rita",))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.admin.username == "gitops-admin"  # Gitea reserves "admin"
    names = [first.admin.username, first.learner.username, first.engine.username, "rita"]
    assert len(set(names)) == 4 and [r.username for r in first.reviewers] == ["rita"]
    passwords = {a.password for a in (first.admin, first.learner, first.engine, *first.reviewers)}
    assert len(passwords) == 4 and all(len(p) >= 20 for p in passwords)

    assert load_or_create_accounts(path, reviewers=("rita",)) == first
    more = load_or_create_accounts(path, reviewers=("rita", "sam"))
    assert more.reviewers[0] == first.reviewers[0] and more.reviewers[1].username == "sam"
    assert more.admin == first.admin and more.webhook_secret == first.webhook_secret
    assert json.loads(path.read_text())["reviewers"][1]["username"] == "sam"


def test_a_class_s_learners_are_added_and_a_lab_s_file_stays_as_it_was(tmp_path):
    path = tmp_path / "forge-credentials.json"
    lab = load_or_create_accounts(path)
    assert "learners" not in json.loads(path.read_text()) and lab.learners == ()
    assert lab.class_learner("learner") == lab.learner
    first = load_or_create_accounts(path, learners=("ana", "ben"))
    more = load_or_create_accounts(path, learners=("ben", "cem"))
    assert [a.username for a in more.learners] == ["ana", "ben", "cem"]
    assert more.learners[:2] == first.learners and more.admin == lab.admin  # kept passwords are kept
    assert more.class_learner("cem") == more.learners[2] and more.class_learner("dov") is None
    assert [a["username"] for a in json.loads(path.read_text())["learners"]] == ["ana", "ben", "cem"]


def test_a_damaged_accounts_file_is_an_error_that_names_it(tmp_path):
    path = tmp_path / "forge-credentials.json"
    path.write_text('{"admin": {}}')
    with pytest.raises(ForgeError) as info:
        load_or_create_accounts(path)
    assert str(path) in info.value.message
    assert path.read_text() == '{"admin": {}}'  # nothing overwritten


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_gitea_is_one_error_with_the_fix():
    api = GiteaAPI(f"http://127.0.0.1:{_closed_port()}", Account("learner", "pw", "l@x.invalid"))
    with pytest.raises(ForgeError) as info:
        api.whoami()
    assert "cannot reach Gitea" in info.value.message and info.value.fix


def test_no_call_is_made_once_the_commands_deadline_passed():
    api = GiteaAPI(f"http://127.0.0.1:{_closed_port()}", Account("learner", "pw", "l@x.invalid"))
    with command_deadline(0), pytest.raises(WaitTimeout):
        api.whoami()


def test_a_failing_admin_cli_says_what_failed_and_how_to_fix_it(tmp_path):
    create = gitea_cli_admin_creator(["sh", "-c", 'echo "user already exists [name: gitops-admin]" >&2; exit 1', "-"])
    with pytest.raises(ForgeError) as info:
        create(Account("gitops-admin", "pw", "a@x.invalid"))
    assert "user already exists" in info.value.message
    assert "change-password" in (info.value.fix or "")

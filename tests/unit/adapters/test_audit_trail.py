"""History is the overlay's own Git history, rollback works from it, and one
approval rule serves the gate and the lab checks (issue 14).

Against a real bare remote: hand edits and plain `git revert`s are made with
plain git, as a learner makes them.
"""

from __future__ import annotations

import json
import re

import pytest
from helpers.paths import TESTDATA
from helpers.gitutil import git, remote_version

from gitops_lab.adapters.repo import RepoLayout
from gitops_lab.adapters.repo.approval import record_approval
from gitops_lab.gates import run_gates

ALICE = "Alice Approver <alice@example.com>"


@pytest.fixture
def lab(lab):
    """The seeded working copy, committing as Pat Promoter."""
    git(lab[0], "config", "user.name", "Pat Promoter")
    git(lab[0], "config", "user.email", "pat@example.com")
    return lab


def hand_edit(wc, env: str, version: str, message: str) -> str:
    RepoLayout(wc).set_model_version(env, version)
    git(wc, "commit", "-qam", message)
    git(wc, "push", "--quiet", "origin", "main")  # a write publishes only its own commit
    git(wc, "push", "-q", "origin", "main")
    return git(wc, "rev-parse", "HEAD")


def history_rows(cli, env: str) -> list[tuple]:
    result = cli("history", "--env", env, "--output", "json")
    assert result.exit_code == 0, result.output
    return [(e["action"], e["previous"], e["version"]) for e in json.loads(result.stdout)]


# --------------------------------------------------------------------------- #
# History: every change of an environment's version, whoever made it
# --------------------------------------------------------------------------- #
def test_plain_commits_and_reverts_appear_as_manual_with_author_and_subject(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging").exit_code == 0
    promotion = git(wc, "rev-parse", "HEAD")
    git(wc, "revert", "--no-edit", "HEAD")
    git(wc, "push", "-q", "origin", "main")
    edit = hand_edit(wc, "staging", "v3", "Try v3 in staging by hand")
    entries = json.loads(cli("history", "--env", "staging", "--output", "json").stdout)
    assert [(e["action"], e["previous"], e["version"]) for e in entries] == [
        ("manual", "v1", "v3"),
        ("manual", "v2", "v1"),
        ("promote", "v1", "v2"),
        ("seed", None, "v1"),
    ]
    assert (entries[0]["commit"], entries[0]["author"], entries[0]["subject"]) == (
        edit,
        "Pat Promoter",
        "Try v3 in staging by hand",
    )
    assert entries[1]["subject"] == 'Revert "Promote v2 to staging"' and entries[1]["reverts"] == promotion
    table = cli("history", "--env", "staging").stdout.splitlines()
    assert [row.split()[3] for row in table[1:]] == ["manual", "manual", "promote", "seed"]


def test_lab_reset_and_restore_commits_that_move_an_environment_appear(lab, cli, monkeypatch):

    monkeypatch.setenv("GITOPS_LAB_LABS_DIR", str(TESTDATA / "labs"))
    wc, remote = lab
    assert cli("lab", "start", "good").exit_code == 0
    assert cli("lab", "solve", "new-model").exit_code == 0  # dev: v2 -> v3 (a deploy commit)
    assert cli("lab", "reset").exit_code == 0  # dev: v3 -> v2
    assert history_rows(cli, "dev")[:2] == [("lab-reset", "v3", "v2"), ("deploy", "v2", "v3")]
    # A reset is a baseline: there is nothing after it to roll back.
    refused = cli("rollback", "--env", "dev")
    assert refused.exit_code == 2 and "dev has no promotion to roll back" in refused.stderr


# --------------------------------------------------------------------------- #
# Rollback from that history
# --------------------------------------------------------------------------- #
def test_rollback_after_a_plain_revert_says_it_is_already_undone(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging").exit_code == 0
    git(wc, "revert", "--no-edit", "HEAD")
    git(wc, "push", "-q", "origin", "main")
    head = git(remote, "rev-parse", "main")
    result = cli("rollback", "--env", "staging")
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "staging has no promotion to roll back" in line
    assert "already went back to v1" in line and 'Revert "Promote v2 to staging"' in line
    assert git(remote, "rev-parse", "main") == head


def test_rollback_after_a_hand_edit_undoes_the_hand_edit(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging").exit_code == 0
    edit = hand_edit(wc, "staging", "v3", "Try v3 in staging by hand")
    result = cli("rollback", "--env", "staging", "--output", "json")
    assert result.exit_code == 0, result.output
    assert remote_version(remote, "staging") == "v2"
    assert json.loads(result.stdout)["trailers"]["Reverts"] == edit
    # Then the promotion before it.
    assert cli("rollback", "--env", "staging").exit_code == 0
    assert remote_version(remote, "staging") == "v1"


def test_hand_edit_back_to_an_earlier_version_counts_as_going_back(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging").exit_code == 0
    hand_edit(wc, "staging", "v1", "Put staging back on v1")
    result = cli("rollback", "--env", "staging")
    assert result.exit_code == 2 and "already went back to v1" in result.stderr
    assert cli("rollback", "--env", "staging", "--to", "v1").stdout.strip() == "staging already runs v1; nothing to do"


# --------------------------------------------------------------------------- #
# The approval rule
# --------------------------------------------------------------------------- #
def approval_gate(wc):
    [gate] = run_gates(wc, "staging", "prod", "v2", only=["approval"])
    return gate


def test_any_change_of_the_version_voids_earlier_approvals_even_a_lab_reset(lab, cli):
    """Before: a reset commit (no Environment trailer) left a stale approval valid."""
    wc, remote = lab
    assert cli("promote", "--to", "staging").exit_code == 0
    record_approval(wc, "prod", "v2", by=ALICE)
    assert cli("promote", "--to", "prod").exit_code == 0
    record_approval(wc, "prod", "v2", by="Bob Reviewer <bob@example.com>")  # approved again after the fact
    # A restore moves prod back to v1, as `lab reset` does: trailers name no environment.
    git(wc, "restore", "--source=gitops-lab/seed", "--", "overlays/prod")
    git(wc, "commit", "-qam", "Reset lab promotion to its start point\n\nGitops-Lab-Action: lab-reset\nLab: promotion")
    git(wc, "push", "--quiet", "origin", "main")  # a write publishes only its own commit
    gate = approval_gate(wc)
    assert not gate.passed
    assert "since prod's last change of version" in gate.summary and "Reset lab promotion" in gate.summary


def test_a_hand_edit_voids_earlier_approvals(lab, cli):
    wc, remote = lab
    record_approval(wc, "prod", "v2", by=ALICE)
    assert approval_gate(wc).passed
    hand_edit(wc, "prod", "v3", "Hot-swap prod")
    assert not approval_gate(wc).passed


def test_promoter_cannot_approve_their_own_prod_promotion(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging").exit_code == 0
    assert cli("approve", "--env", "prod", "--version", "v2").exit_code == 0  # as Pat, who promotes
    head = git(remote, "rev-parse", "main")
    refused = cli("promote", "--to", "prod")
    assert refused.exit_code == 4
    [line] = refused.stderr.strip().splitlines()
    assert "the same person who promotes (Pat Promoter <pat@example.com>)" in line
    assert "gitops-lab approve --env prod --version v2 --by 'NAME <EMAIL>'` as someone other than the promoter" in line
    assert git(remote, "rev-parse", "main") == head
    # Naming yourself differently is still you: the email is the identity.
    assert cli("approve", "--env", "prod", "--version", "v2", "--by", "Someone Else").exit_code == 0
    assert cli("promote", "--to", "prod").exit_code == 4
    assert cli("approve", "--env", "prod", "--version", "v2", "--by", ALICE).exit_code == 0
    assert cli("promote", "--to", "prod").exit_code == 0
    assert git(remote, "log", "-1", "--format=%an <%ae>", "main~1") == ALICE


def test_separate_duties_is_a_gates_yaml_setting(lab, cli):
    wc, remote = lab
    gates = wc / "gates.yaml"
    gates.write_text(gates.read_text().replace("separate_duties: [prod]", "separate_duties: []"))
    git(wc, "commit", "-qam", "One person may approve and promote prod")
    git(wc, "push", "--quiet", "origin", "main")  # a write publishes only its own commit
    assert cli("promote", "--to", "staging").exit_code == 0
    assert cli("approve", "--env", "prod", "--version", "v2").exit_code == 0
    assert cli("promote", "--to", "prod").exit_code == 0


def test_approvers_are_checked_against_the_commit_author_not_the_trailer(lab, cli):
    wc, remote = lab
    gates = wc / "gates.yaml"
    gates.write_text(gates.read_text().replace("approvers: []", "approvers: [carol@example.com]"))
    git(wc, "commit", "-qam", "Only carol approves prod")
    git(wc, "push", "--quiet", "origin", "main")  # a write publishes only its own commit
    # Mallory writes carol's name into the trailer of a commit she authors.
    git(
        wc,
        "-c",
        "user.name=Mallory",
        "-c",
        "user.email=mallory@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "Approve v2 for prod\n\nGitops-Lab-Action: approve\nEnvironment: prod\nModel-Version: v2\nApproved-By: carol",
    )
    git(wc, "push", "--quiet", "origin", "main")
    gate = approval_gate(wc)
    assert (
        not gate.passed and "says Approved-By: carol, but its author is Mallory <mallory@example.com>" in gate.summary
    )
    record_approval(wc, "prod", "v2", by="carol <carol@example.com>")
    assert approval_gate(wc).passed


@pytest.mark.parametrize(
    "failing,advice",
    [
        (
            "approval",
            "record an approval with `gitops-lab approve --env prod --version v1 --by 'NAME <EMAIL>'` as someone "
            "other than the promoter",
        ),
        ("policy", "fix the manifest the policy lines name"),
        ("model-eval", "v3 itself fails model-eval: promote another version (--version)"),
    ],
)
def test_gate_run_advises_the_fix_of_the_failing_gate(lab, cli, failing, advice):
    wc, remote = lab
    if failing == "policy":
        deployment = wc / "base" / "deployment.yaml"
        deployment.write_text(re.sub(r"@sha256:[0-9a-f]{64}", "", deployment.read_text()))
    version = ["--version", "v3"] if failing == "model-eval" else []
    result = cli("gate", "run", "--to", "prod", "--gate", failing, *version)
    assert result.exit_code == 4
    last = result.stderr.strip().splitlines()[-1]
    assert advice in last and "gates.yaml" not in last
    assert ("promote another" in last) == (failing == "model-eval")

"""`gitops-lab approve` and the approval rule, against a real bare remote.

An approval is an empty, pushed commit with trailers. It counts for exactly one
version and one environment, until that environment's next promotion or rollback.
"""

from __future__ import annotations


import pytest
from helpers.gitutil import git, last_trailers

from gitops_lab.adapters.repo.approval import find_approval, record_approval
from gitops_lab.gates import run_gates


@pytest.fixture
def lab(lab):
    """The shared seeded working copy, committing as Dana Reviewer."""
    git(lab[0], "config", "user.name", "Dana Reviewer")
    return lab


def test_approve_pushes_an_empty_commit_with_trailers(lab, cli):
    wc, remote = lab
    seed = git(remote, "rev-parse", "main")
    result = cli(
        "approve",
        "--env",
        "prod",
        "--version",
        "v2",
        "--by",
        "alice <alice@example.com>",
        "--note",
        "A/B test looked good",
        "--repo",
        str(wc),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "approved v2 for prod by alice"
    assert git(remote, "rev-parse", "main^") == seed
    assert git(remote, "diff", "--stat", seed, "main") == ""  # no file changed
    assert git(remote, "log", "-1", "--format=%s", "main") == "Approve v2 for prod"
    assert git(remote, "log", "-1", "--format=%b", "main").splitlines()[0] == "A/B test looked good"
    assert last_trailers(remote) == [
        "Gitops-Lab-Action: approve",
        "Environment: prod",
        "Model-Version: v2",
        "Approved-By: alice",
    ]
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")


def test_approver_defaults_to_git_user_name(lab, cli):
    wc, remote = lab
    assert cli("approve", "--env", "prod", "--version", "v2", "--repo", str(wc)).exit_code == 0
    assert "Approved-By: Dana Reviewer" in git(remote, "log", "-1", "--format=%B", "main")


def test_approving_again_is_a_noop_but_a_second_approver_is_recorded(lab, cli):
    wc, remote = lab
    cli("approve", "--env", "prod", "--version", "v2", "--by", "alice <alice@example.com>", "--repo", str(wc))
    head = git(remote, "rev-parse", "main")
    again = cli("approve", "--env", "prod", "--version", "v2", "--by", "alice <alice@example.com>", "--repo", str(wc))
    assert again.exit_code == 0
    assert f"already approved for prod by alice ({head[:7]}); nothing to do" in again.stdout
    assert git(remote, "rev-parse", "main") == head
    assert (
        cli("approve", "--env", "prod", "--version", "v2", "--by", "bob <bob@example.com>", "--repo", str(wc)).exit_code
        == 0
    )
    assert git(remote, "rev-parse", "main^") == head


@pytest.mark.parametrize(
    "args,code,words",
    [
        (["--env", "prod", "--version", "v9"], 2, ["model version 'v9' does not exist"]),
        (["--env", "qa", "--version", "v2"], 2, ["'qa' is not one of"]),
        (["--env", "prod"], 2, ["Missing option '--version'"]),
        (["--env", "prod", "--version", "v2", "--by", "  "], 2, ["the approver's name is empty"]),
    ],
    ids=["unknown-version", "unknown-env", "no-version", "blank-approver"],
)
def test_bad_approvals_are_one_line_and_change_nothing(lab, cli, args, code, words):
    wc, remote = lab
    before = (git(wc, "rev-parse", "HEAD"), git(remote, "rev-parse", "main"))
    result = cli("approve", *args, "--repo", str(wc))
    assert result.exit_code == code
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for word in words:
        assert word in line, line
    assert (git(wc, "rev-parse", "HEAD"), git(remote, "rev-parse", "main")) == before


def test_approve_refuses_a_dirty_working_copy(lab, cli):
    wc, remote = lab
    (wc / "notes.txt").write_text("draft\n")
    result = cli("approve", "--env", "prod", "--version", "v2", "--repo", str(wc))
    assert result.exit_code == 1
    assert "uncommitted changes: notes.txt" in result.stderr


# --------------------------------------------------------------------------- #
# The rule: exact version, exact environment, until the next promotion or rollback
# --------------------------------------------------------------------------- #
def test_approval_is_for_one_version_and_one_environment(lab):
    wc, remote = lab
    record_approval(wc, "prod", "v3", by="alice <alice@example.com>")
    record_approval(wc, "staging", "v2", by="alice <alice@example.com>")
    assert find_approval(wc, "prod", "v2") is None
    [gate] = run_gates(wc, "staging", "prod", "v2", only=["approval"])
    assert not gate.passed
    found = find_approval(wc, "prod", "v3")
    assert found is not None and (found.approved_by, found.environment) == ("alice", "prod")


def test_promotion_or_rollback_of_the_environment_ends_earlier_approvals(lab, cli):
    wc, remote = lab
    record_approval(wc, "prod", "v2", by="alice <alice@example.com>")
    # A promotion of another environment leaves prod's approval standing.
    assert cli("promote", "--to", "staging", "--repo", str(wc)).exit_code == 0
    assert find_approval(wc, "prod", "v2").approved_by == "alice"
    # A promotion of prod uses up every earlier approval of prod, of any version.
    record_approval(wc, "prod", "v1", by="alice <alice@example.com>")
    record_approval(wc, "prod", "v2", by="bob <bob@example.com>")
    assert cli("promote", "--to", "prod", "--repo", str(wc)).exit_code == 0
    assert find_approval(wc, "prod", "v2") is None
    assert find_approval(wc, "prod", "v1") is None


def test_only_listed_approvers_count_when_gates_yaml_names_them(lab, cli):
    wc, remote = lab
    gates = wc / "gates.yaml"
    gates.write_text(gates.read_text().replace("approvers: []", "approvers: [carol]"))
    git(wc, "commit", "--quiet", "-am", "Only carol approves prod")
    git(wc, "push", "--quiet", "origin", "main")  # a write publishes only its own commit
    record_approval(wc, "prod", "v2", by="mallory <mallory@example.com>")
    seed = git(remote, "rev-parse", "gitops-lab/seed^{commit}")
    [gate] = run_gates(wc, "staging", "prod", "v2", only=["approval"])
    assert not gate.passed and gate.summary == (
        f"no approval of v2 for prod by one of carol since prod's last change of version ({seed[:7]}, "
        "Seed the lab environments); approvals that do not count: "
        f"{git(remote, 'rev-parse', '--short=7', 'main')} is by mallory <mallory@example.com>, "
        "who is not one of the approvers (carol) in gates.yaml"
    )
    record_approval(wc, "prod", "v2", by="carol <carol@example.com>")
    [gate] = run_gates(wc, "staging", "prod", "v2", only=["approval"])
    assert gate.passed and gate.summary.startswith("approved by carol in ")

"""The Git core end to end against a real bare remote: the walk a learner makes.

init -> promote dev->staging -> promote staging->prod -> rollback prod -> history,
then every guard rail: each bad input is one line on stderr, a non-zero exit
(0 for a no-op) and an unchanged repository.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers.faults import race_once_before_push
from helpers.gitutil import git, last_trailers, remote_version

from gitops_lab.adapters.repo import Git, RepoLayout


def test_init_seeds_template_pushes_and_tags(lab):
    wc, remote = lab
    assert git(remote, "log", "--format=%s", "main") == "Seed the lab environments"
    assert git(remote, "rev-parse", "gitops-lab/seed^{commit}") == git(wc, "rev-parse", "HEAD")
    layout = RepoLayout(wc)
    assert [layout.model_version(env) for env in ("dev", "staging", "prod")] == ["v2", "v1", "v1"]
    assert layout.versions() == ["v1", "v2", "v3", "v4", "v5", "v6"]
    assert not Git(wc).dirty_files()


def test_init_again_changes_nothing_and_a_new_path_clones(lab, cli, tmp_path):
    wc, remote = lab
    head = git(remote, "rev-parse", "main")
    again = cli("repo", "init", str(wc), "--remote", str(remote), "--output", "json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["action"] == "reused"
    other = cli("repo", "init", str(tmp_path / "second"), "--remote", str(remote), "--output", "json")
    assert json.loads(other.stdout)["action"] == "cloned"
    assert git(remote, "rev-parse", "main") == head
    assert git(tmp_path / "second", "rev-parse", "HEAD") == head


def test_scripted_walk_git_log_overlays_and_history_agree(lab, cli):
    wc, remote = lab
    # prod's approval gate needs a recorded approval of v2 before the walk reaches prod.
    assert cli("approve", "--env", "prod", "--version", "v2", "--by", "alice <alice@example.com>").exit_code == 0
    steps = [
        (
            ["promote", "--from", "dev", "--to", "staging", "--version", "v2"],
            "promoted v2 from dev to staging (was v1)",
        ),
        (["promote", "--from", "staging", "--to", "prod"], "promoted v2 from staging to prod (was v1)"),
        (["rollback", "--env", "prod"], "rolled prod back from v2 to v1"),
    ]
    heads = [git(remote, "rev-parse", "main")]
    for args, expected in steps:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert expected in result.stdout
        heads.append(git(remote, "rev-parse", "main"))
    # Every step is exactly one commit on top of the last: nothing rewritten.
    for older, newer in zip(heads, heads[1:]):
        assert git(remote, "rev-parse", f"{newer}^") == older
    assert git(remote, "log", "--format=%s", "main").splitlines() == [
        "Roll back prod to v1",
        "Promote v2 to prod",
        "Promote v2 to staging",
        "Approve v2 for prod",
        "Seed the lab environments",
    ]
    assert [remote_version(remote, env) for env in ("dev", "staging", "prod")] == ["v2", "v2", "v1"]
    # The working copy matches the remote.
    assert git(wc, "rev-parse", "HEAD") == heads[-1]

    prod = json.loads(cli("history", "--env", "prod", "--output", "json").stdout)
    assert [(e["action"], e["previous"], e["version"]) for e in prod] == [
        ("rollback", "v2", "v1"),
        ("promote", "v1", "v2"),
        ("approve", None, "v2"),
        ("seed", None, "v1"),
    ]
    assert prod[0]["reverts"] == prod[1]["commit"] == heads[2]
    assert prod[1]["promoted_from"] == "staging"
    staging = json.loads(cli("history", "--env", "staging", "--output", "json").stdout)
    assert [(e["action"], e["version"]) for e in staging] == [("promote", "v2"), ("seed", "v1")]

    # The rollback is a revert: its diff is the promotion's diff reversed.
    promote_diff = git(remote, "diff", heads[1], heads[2])
    revert_diff = git(remote, "diff", heads[3], heads[2])
    assert promote_diff == revert_diff
    # And the promotion changed exactly one line.
    assert git(remote, "diff", "--numstat", heads[1], heads[2]) == "1\t1\toverlays/prod/kustomization.yaml"

    table = cli("history", "--env", "prod").stdout.splitlines()
    assert table[0].split() == ["COMMIT", "DATE", "ACTION", "VERSION", "AUTHOR", "SUBJECT"]
    assert [row.split()[3] for row in table[1:]] == ["rollback", "promote", "approve", "seed"]


def test_promote_commit_carries_trailers(lab, cli):
    wc, remote = lab
    cli("promote", "--to", "staging")
    trailers = last_trailers(remote)
    assert trailers == [
        "Gitops-Lab-Action: promote",
        "Environment: staging",
        "Promoted-From: dev",
        "Model-Version: v2",
        "Previous-Version: v1",
        "Gate-Data-Quality: pass (269 rows, 3.8% dropped, max drift 0.10 sd, PSI 0.01)",
        "Gate-Model-Eval: pass (accuracy 0.8276 >= 0.65)",
        "Gate-Policy: pass (6 objects, no violations)",
    ]


def test_rollback_to_a_named_earlier_version(lab, cli):
    wc, remote = lab
    cli("promote", "--to", "staging", "--version", "v2")
    cli("promote", "--to", "staging", "--version", "v3", "--skip-gate", "data-quality", "--skip-gate", "model-eval")
    result = cli("rollback", "--env", "staging", "--to", "v1", "--output", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["version"] == "v1"
    assert remote_version(remote, "staging") == "v1"
    # Reverting the last promotion after a --to move would not restore the
    # version it claims, so it is refused instead.
    refused = cli("rollback", "--env", "staging")
    assert refused.exit_code != 0
    assert "--to" in refused.stderr


def test_second_rollback_reverts_the_promotion_before(lab, cli):
    wc, remote = lab
    cli("promote", "--to", "staging", "--version", "v2")
    # v3 fails its gates; skipping them (recorded in the commit) puts it in staging to roll back.
    cli("promote", "--to", "staging", "--version", "v3", "--skip-gate", "data-quality", "--skip-gate", "model-eval")
    assert cli("rollback", "--env", "staging").exit_code == 0
    assert remote_version(remote, "staging") == "v2"
    assert cli("rollback", "--env", "staging").exit_code == 0
    assert remote_version(remote, "staging") == "v1"


BAD_INPUTS = [
    # (args, exit code, words the one line must contain)
    (["promote", "--to", "qa"], 2, ["'qa' is not one of", "--to"]),
    (["promote", "--from", "staging", "--to", "staging"], 2, ["cannot promote staging to itself"]),
    (["promote", "--to", "staging", "--version", "v9"], 2, ["model version 'v9' does not exist", "v1, v2, v3"]),
    (["rollback", "--env", "prod"], 2, ["prod has no promotion to roll back"]),
    (["rollback", "--env", "prod", "--to", "v3"], 2, ["prod never ran v3", "promote"]),
    (["rollback", "--env", "prod", "--to", "v7"], 2, ["model version 'v7' does not exist"]),
    (["history", "--env", "uat"], 2, ["'uat' is not one of"]),
]


@pytest.mark.parametrize("args,code,words", BAD_INPUTS, ids=[" ".join(a) for a, _, _ in BAD_INPUTS])
def test_bad_input_is_one_line_nonzero_and_changes_nothing(lab, cli, args, code, words):
    wc, remote = lab
    before = (git(wc, "rev-parse", "HEAD"), git(remote, "rev-parse", "main"), git(wc, "status", "--porcelain"))
    result = cli(*args)
    assert result.exit_code == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.output
    assert (git(wc, "rev-parse", "HEAD"), git(remote, "rev-parse", "main"), git(wc, "status", "--porcelain")) == before


@pytest.mark.parametrize("dirty", ["modified", "untracked"])
def test_dirty_working_copy_is_refused_naming_the_files(lab, cli, dirty):
    wc, remote = lab
    if dirty == "modified":
        target = wc / "overlays" / "dev" / "kustomization.yaml"
        target.write_text(target.read_text() + "# my note\n")
        name = "overlays/dev/kustomization.yaml"
    else:
        target = wc / "notes.txt"
        target.write_text("work in progress\n")
        name = "notes.txt"
    content = target.read_text()
    head = git(wc, "rev-parse", "HEAD")
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "uncommitted changes" in line and name in line
    assert target.read_text() == content
    assert git(wc, "rev-parse", "HEAD") == head


def test_promoting_the_deployed_version_is_a_noop(lab, cli):
    wc, remote = lab
    head = git(remote, "rev-parse", "main")
    result = cli("promote", "--from", "staging", "--to", "prod")
    assert result.exit_code == 0
    seed = git(remote, "log", "--format=%h", "-1", "gitops-lab/seed")
    assert f"prod already runs v1 since {seed} (" in result.stdout and "nothing to do" in result.stdout
    assert git(remote, "rev-parse", "main") == head == git(wc, "rev-parse", "HEAD")


def test_not_on_main_is_refused(lab, cli):
    wc, remote = lab
    git(wc, "switch", "--quiet", "-c", "experiment")
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 1
    assert "git switch main" in result.stderr


def test_catches_up_with_a_remote_that_moved(lab, cli, tmp_path):
    wc, remote = lab
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(other)], check=True)
    RepoLayout(other).set_model_version("dev", "v3")
    git(other, "commit", "--quiet", "-am", "Try v3 in dev")
    git(other, "push", "--quiet", "origin", "main")
    result = cli(
        "promote", "--from", "dev", "--to", "staging", "--skip-gate", "data-quality", "--skip-gate", "model-eval"
    )
    assert result.exit_code == 0, result.output
    # The working copy fetched first, so it promoted what dev runs now.
    assert "promoted v3 from dev to staging" in result.stdout
    assert remote_version(remote, "staging") == "v3"


def _race_hook(wc: Path, other: Path, env: str, version: str) -> None:
    """A pre-push hook that moves the remote once, between our fetch and our push."""
    race_once_before_push(
        wc,
        f"cd '{other}' && sed -i 's/model-version: .*/model-version: {version}/' overlays/{env}/kustomization.yaml"
        f" && git commit --quiet -am 'Concurrent change to {env}' && git push --quiet origin main",
    )


def test_push_rejected_because_remote_moved_is_rebased_and_retried(lab, cli, tmp_path):
    wc, remote = lab
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(other)], check=True)
    _race_hook(wc, other, "dev", "v1")
    result = cli("promote", "--from", "dev", "--to", "staging")
    assert result.exit_code == 0, result.output
    assert "push attempt 1 rejected" in result.stderr
    assert git(remote, "log", "--format=%s", "main").splitlines()[:2] == [
        "Promote v2 to staging",
        "Concurrent change to dev",
    ]
    # Linear history (rebased, no merge commit), and a backup of the pre-rebase state.
    assert git(remote, "rev-list", "--merges", "main") == ""
    assert git(wc, "for-each-ref", "--format=%(refname)", "refs/gitops-lab/backup/").startswith(
        "refs/gitops-lab/backup/"
    )


def test_conflicting_concurrent_change_fails_cleanly_and_keeps_the_commit(lab, cli, tmp_path):
    wc, remote = lab
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(other)], check=True)
    _race_hook(wc, other, "staging", "v3")
    result = cli("promote", "--from", "dev", "--to", "staging")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()[-1:]
    assert "changed the same lines concurrently" in line and "refs/gitops-lab/backup/" in line
    backup = line.split("kept on ")[1].split(";")[0]
    assert git(wc, "log", "-1", "--format=%s", backup) == "Promote v2 to staging"
    # The remote keeps the other writer's change; nothing was forced.
    assert remote_version(remote, "staging") == "v3"
    assert Git(wc).in_progress_operation() is None

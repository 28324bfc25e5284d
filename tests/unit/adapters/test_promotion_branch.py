"""A promotion pushed to its pull request's branch instead of main (the forge flow's Git half), against a real bare
remote without a forge: main stays as it was, a refused push is undone with the commit on a backup ref, and after
the merge `history` shows the promotion once, at the merge."""

from __future__ import annotations

import json

import pytest
from helpers.gitutil import git, remote_version

from gitops_lab.adapters.repo import RepoLayout
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.promotion import commit_promotion
from gitops_lab.errors import GitError

BRANCH = "promote/prod-v2"


def test_the_commit_goes_to_its_branch_and_main_stays(lab):
    wc, remote = lab
    before = git(wc, "rev-parse", "HEAD")
    result = commit_promotion(Git(wc), RepoLayout(wc), "staging", "prod", "v2", branch=BRANCH)
    assert result.pushed and result.commit == git(remote, "rev-parse", BRANCH)
    assert git(remote, "rev-parse", f"{BRANCH}^") == before == git(wc, "rev-parse", "HEAD")
    assert remote_version(remote, "prod") == "v1" and RepoLayout(wc).model_version("prod") == "v1"
    assert git(wc, "status", "--porcelain") == ""
    trailers = git(remote, "log", "-1", "--format=%(trailers:only,unfold)", BRANCH)
    assert "Promoted-From: staging" in trailers and "Model-Version: v2" in trailers


def test_a_branch_holding_something_else_is_not_overwritten_and_the_commit_is_kept(lab):
    wc, remote = lab
    before = git(wc, "rev-parse", "HEAD")
    git(wc, "commit", "--quiet", "--allow-empty", "-m", "someone else's")
    git(wc, "push", "--quiet", "origin", f"HEAD:refs/heads/{BRANCH}")
    other = git(wc, "rev-parse", "HEAD")
    git(wc, "reset", "--quiet", "--hard", before)
    with pytest.raises(GitError) as refused:
        commit_promotion(Git(wc), RepoLayout(wc), "staging", "prod", "v2", branch=BRANCH)
    assert git(remote, "rev-parse", BRANCH) == other  # no force push
    assert git(wc, "rev-parse", "HEAD") == before and git(wc, "status", "--porcelain") == ""
    kept = refused.value.unpublished
    assert kept and git(wc, "log", "-1", "--format=%s", kept) == "Promote v2 to prod"


def test_history_shows_a_merged_promotion_once_at_its_merge(lab, cli):
    wc, remote = lab
    promoted = commit_promotion(Git(wc), RepoLayout(wc), "staging", "prod", "v2", branch=BRANCH).commit
    git(wc, "fetch", "--quiet", "origin", BRANCH)
    git(wc, "merge", "--quiet", "--no-ff", "-m", "Merge pull request #1", "FETCH_HEAD")
    git(wc, "push", "--quiet", "origin", "main")
    merge = git(wc, "rev-parse", "HEAD")

    history = json.loads(cli("history", "--env", "prod", "--repo", str(wc), "--output", "json").stdout)
    assert [(e["commit"], e["action"], e["previous"], e["version"]) for e in history[:1]] == [
        (merge, "promote", "v1", "v2")
    ]
    assert promoted not in [e["commit"] for e in history]
    assert history[0]["subject"] == "Promote v2 to prod" and "pull_request" not in history[0]  # no forge
    assert [e["action"] for e in history[1:]] == ["seed"]
    assert cli("rollback", "--env", "prod", "--repo", str(wc)).exit_code == 0
    assert remote_version(remote, "prod") == "v1"

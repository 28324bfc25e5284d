"""What was pushed, read one way everywhere: fetch, fast-forward, a version at a commit.

Against a real bare remote that another clone pushes to, as a learner's
second machine would.
"""

from __future__ import annotations

import re

import pytest
from helpers.paths import REPO
from helpers.gitutil import git

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.pushed import fetch_pushed, follow_pushed, version_at
from gitops_lab.errors import RepoStateError

SRC = REPO / "src" / "gitops_lab"


@pytest.fixture
def pushed_elsewhere(lab, tmp_path):
    """(working copy, the commit another clone pushed: staging set to v2)."""
    wc, remote = lab
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(remote), str(other))
    overlay = other / "overlays/staging/kustomization.yaml"
    overlay.write_text(
        overlay.read_text().replace("gitops-lab.io/model-version: v1", "gitops-lab.io/model-version: v2")
    )
    git(other, "commit", "--quiet", "-am", "staging runs v2")
    git(other, "push", "--quiet", "origin", "main")
    return wc, git(other, "rev-parse", "HEAD")


def test_fetch_reads_the_push_without_moving_the_working_copy(pushed_elsewhere):
    wc, pushed = pushed_elsewhere
    before = git(wc, "rev-parse", "HEAD")
    ref = fetch_pushed(Git(wc))
    assert git(wc, "rev-parse", ref) == pushed and git(wc, "rev-parse", "HEAD") == before
    assert version_at(Git(wc), ref, "staging") == "v2"
    assert version_at(Git(wc), before, "staging") == "v1"


def test_follow_fast_forwards_a_clean_working_copy(pushed_elsewhere):
    wc, pushed = pushed_elsewhere
    follow_pushed(Git(wc))
    assert git(wc, "rev-parse", "HEAD") == pushed


def test_follow_leaves_uncommitted_work_where_it_is(pushed_elsewhere):
    wc, pushed = pushed_elsewhere
    (wc / "notes.txt").write_text("mine")
    before = git(wc, "rev-parse", "HEAD")
    assert git(wc, "rev-parse", follow_pushed(Git(wc))) == pushed
    assert git(wc, "rev-parse", "HEAD") == before and (wc / "notes.txt").read_text() == "mine"


def test_without_a_remote_what_was_pushed_is_head(tmp_path, cli):
    wc = tmp_path / "solo"
    assert cli("repo", "init", str(wc)).exit_code == 0
    assert fetch_pushed(Git(wc)) == "HEAD" == follow_pushed(Git(wc))


def test_a_version_line_missing_at_a_commit_says_which_overlay(pushed_elsewhere):
    wc, _ = pushed_elsewhere
    (wc / "overlays/prod/kustomization.yaml").unlink()
    git(wc, "commit", "--quiet", "-am", "no prod overlay")
    with pytest.raises(RepoStateError, match="overlays/prod/kustomization.yaml must name its model version"):
        version_at(Git(wc), "HEAD", "prod")


def test_a_promotion_fetches_once(lab, monkeypatch):
    """It checks its input and catches up with the remote once, before its gates: one fetch, one push."""
    from gitops_lab.reporter import Reporter
    from gitops_lab.workflows.promotion import run_promotion

    wc, remote = lab
    calls: list[str] = []
    run = Git.run

    def counting(self, *args, **kwargs):
        if args and args[0] in ("fetch", "push"):
            calls.append(args[0])
        return run(self, *args, **kwargs)

    monkeypatch.setattr(Git, "run", counting)
    result = run_promotion(Reporter(), wc, "staging", "dev", "v1")
    assert result.changed and result.pushed
    assert calls == ["fetch", "push"]
    assert git(remote, "rev-parse", "main") == result.commit


def test_only_pushed_fetches_and_only_publish_pushes():
    """`git fetch` lives in pushed.py (and in publish.py, a write's own catch-up and rebase); `git push`,
    tags included, in publish.py only."""
    homes = {"fetch": {"pushed.py", "publish.py"}, "push": {"publish.py"}}
    pattern = re.compile(r"""run\(\s*"(fetch|push)"|^\s*"(fetch|push)",""")
    offenders = [
        f"{path.relative_to(SRC)}:{number} {found.group(1) or found.group(2)}"
        for path in SRC.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if (found := pattern.search(line)) and path.name not in homes[found.group(1) or found.group(2)]
    ]
    assert offenders == []

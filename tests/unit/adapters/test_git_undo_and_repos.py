"""The undo after a failed Git write touches only what the tool changed, and repositories as people really have them.

Undo: a hook of the real remote (or of the working copy) plays the learner who
edits the working copy while the command runs; the write then fails, and the
learner's edits and new files must still be there, with a copy on the backup
ref the message names. Repositories: unborn HEADs,
subfolders, servers that refuse tags, interrupted seeds, two `down`s in one
second, two copies promoting at once, approvals that can never count.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers.faults import BACKUP_RE, install_hook, race_once_before_push
from helpers.gitutil import git, remote_version

from gitops_lab.adapters.repo import RepoLayout

HOOK_WORDS = "policy: changes to this repository need ticket LAB-42"


def _last_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[-1]


def _ref_in(line: str, kind: str) -> str:
    """The backup ref of ``kind`` ("unpublished", "uncommitted") that ``line`` names."""
    [ref] = {ref for ref in BACKUP_RE.findall(line) if f"-{kind}-" in ref}
    return ref


# -- 4. the undo keeps what the user did meanwhile ------------------------------------------------------
def _editing_then_refusing_hook(remote: Path, wc: Path, edits: str) -> Path:
    """pre-receive that makes the learner's edits in ``wc`` (as if typed while the push ran), then refuses."""
    return install_hook(remote, "pre-receive", f"cat >/dev/null\ncd '{wc}' && {edits}\necho '{HOOK_WORDS}' >&2\nexit 1")


def test_a_failed_write_keeps_the_edits_and_new_files_made_while_it_ran(lab, cli):
    wc, remote = lab
    before = git(wc, "rev-parse", "HEAD")
    _editing_then_refusing_hook(
        remote,
        wc,
        "echo 'my note' >> gates.yaml && mkdir -p scratch && echo draft > scratch/idea.txt",
    )
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 1
    line = _last_error_line(result.stderr)
    assert HOOK_WORDS in line
    # The tool's change is gone: back at the old commit, staging still v1 on both sides.
    assert git(wc, "rev-parse", "HEAD") == before
    assert RepoLayout(wc).model_version("staging") == "v1" and remote_version(remote, "staging") == "v1"
    # The learner's edit and new file are still there, and nothing else is changed.
    assert (wc / "gates.yaml").read_text().endswith("my note\n")
    assert (wc / "scratch" / "idea.txt").read_text() == "draft\n"
    status = {line.strip() for line in git(wc, "status", "--porcelain", "--untracked-files=all").splitlines()}
    assert status == {"M gates.yaml", "?? scratch/idea.txt"}
    # ... and saved on the ref the message names, next to the unpublished commit.
    assert "uncommitted changes kept" in line
    unpublished, saved = _ref_in(line, "unpublished"), _ref_in(line, "uncommitted")
    assert git(wc, "log", "-1", "--format=%s", unpublished) == "Promote v2 to staging"
    assert git(wc, "show", f"{saved}:scratch/idea.txt") == "draft"
    assert git(wc, "show", f"{saved}:gates.yaml").endswith("my note")


def test_an_edit_to_the_file_the_tool_changed_keeps_the_users_lines_and_drops_the_tools(lab, cli):
    wc, remote = lab
    # The learner changes the replica count of staging, in the very file the promotion changes.
    _editing_then_refusing_hook(remote, wc, "sed -i 's/count: 1/count: 3/' overlays/staging/kustomization.yaml")
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 1
    text = (wc / "overlays" / "staging" / "kustomization.yaml").read_text()
    assert "count: 3" in text  # the learner's line
    assert "gitops-lab.io/model-version: v1" in text  # the tool's line taken back out
    assert git(wc, "diff", "--stat").count("|") == 1
    assert git(wc, "log", "-1", "--format=%s", "HEAD") != "Promote v2 to staging"


def test_an_edit_that_overlaps_the_tools_change_is_saved_and_named(lab, cli):
    wc, remote = lab
    # The learner rewrites the same line the promotion wrote.
    _editing_then_refusing_hook(
        remote,
        wc,
        "sed -i 's/model-version: v2/model-version: v2 # tried by hand/' overlays/staging/kustomization.yaml",
    )
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 1
    line = _last_error_line(result.stderr)
    assert "overlays/staging/kustomization.yaml overlapped" in line
    saved = _ref_in(line, "uncommitted")
    assert "v2 # tried by hand" in git(wc, "show", f"{saved}:overlays/staging/kustomization.yaml")
    assert RepoLayout(wc).model_version("staging") == "v1"  # the tool's change is not left behind
    assert git(wc, "status", "--porcelain") == ""


def test_a_rebase_refused_because_of_an_unstaged_edit_is_reported_as_such_and_the_edit_kept(lab, cli, tmp_path):
    wc, remote = lab
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(other)], check=True)
    # Between our fetch and our push another copy publishes an unrelated change, and the learner edits a file.
    race_once_before_push(
        wc,
        f"(cd '{other}' && git commit --quiet --allow-empty -m 'Unrelated' && git push --quiet origin main)\n"
        "echo 'my note' >> gates.yaml",
    )
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 1
    line = _last_error_line(result.stderr)
    assert "changed the same lines" not in line
    assert "uncommitted changes made in the working copy while it ran (gates.yaml)" in line
    assert (wc / "gates.yaml").read_text().endswith("my note\n")
    assert remote_version(remote, "staging") == "v1"
    git(wc, "checkout", "--", "gates.yaml")
    again = cli("promote", "--to", "staging")
    assert again.exit_code == 0, again.output
    assert remote_version(remote, "staging") == "v2"


# -- 8. repositories as people really have them -----------------------------------------------------------
def test_a_clone_of_an_empty_repository_is_seeded_by_repo_init_and_named_by_writes(cli, tmp_path):
    remote, clone = tmp_path / "remote.git", tmp_path / "clone"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)  # HEAD names master
    subprocess.run(["git", "clone", "--quiet", str(remote), str(clone)], check=True, capture_output=True)
    refused = cli("promote", "--to", "staging", "--repo", str(clone))
    assert refused.exit_code == 1
    line = _last_error_line(refused.stderr)
    assert "has no commits yet" in line and f"gitops-lab repo init {clone} --remote" in line
    seeded = cli("repo", "init", str(clone), "--remote", str(remote))
    assert seeded.exit_code == 0, seeded.output
    assert git(remote, "rev-parse", "main") == git(clone, "rev-parse", "HEAD")
    assert git(clone, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert cli("promote", "--to", "staging").exit_code == 0
    assert remote_version(remote, "staging") == "v2"


def test_repo_init_pointed_at_a_subfolder_of_the_working_copy_uses_the_working_copy(lab, cli, monkeypatch):
    wc, remote = lab
    monkeypatch.chdir(wc / "overlays")
    result = cli("--name", "again", "repo", "init", ".")
    assert result.exit_code == 0, result.output
    assert f"Reused the lab repository at {wc} " in result.stdout
    assert cli("--name", "again", "promote", "--to", "staging").exit_code == 0
    assert remote_version(remote, "staging") == "v2"


def test_two_downs_in_one_second_keep_both_backups(lab, cli, monkeypatch):
    import time

    from gitops_lab.state import state_root

    wc, _ = lab
    fixed = time.strftime("%Y%m%dT%H%M%S")
    monkeypatch.setattr(time, "strftime", lambda fmt, *args: fixed)  # both downs within the same second
    assert cli("down").exit_code == 0
    assert cli("repo", "init", str(wc)).exit_code == 0  # the same working copy, recorded again
    git(wc, "commit", "--quiet", "--allow-empty", "-m", "Work after the first down")
    assert cli("down").exit_code == 0
    bundles = sorted((state_root() / "gitops-lab" / "backups").glob("repo-*.bundle"))
    assert len(bundles) == 2, bundles
    heads = {git(wc, "bundle", "list-heads", str(b), "refs/heads/main").split()[0] for b in bundles}
    assert heads == {git(wc, "rev-parse", "HEAD~1"), git(wc, "rev-parse", "HEAD")}


def test_a_server_that_refuses_tags_still_gets_a_whole_seed_and_a_second_learner_clones_it(cli, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    # Protected tags, as forges have them: the branch is taken, every tag refused.
    install_hook(remote, "update", 'case "$1" in refs/tags/*) echo "tags are protected here" >&2; exit 1;; esac')
    first = cli("repo", "init", str(tmp_path / "first"), "--remote", str(remote))
    assert first.exit_code == 0, first.output
    assert "refused its tag gitops-lab/seed" in first.stderr and "tags are protected here" in first.stderr
    assert git(remote, "rev-parse", "main") == git(tmp_path / "first", "rev-parse", "HEAD")
    again = cli("repo", "init", str(tmp_path / "first"), "--remote", str(remote))
    assert again.exit_code == 0, again.output
    second = cli("--name", "second", "repo", "init", str(tmp_path / "second"), "--remote", str(remote))
    assert second.exit_code == 0, second.output
    assert "did not seed" not in second.output and "Cloned" in second.stdout
    assert git(tmp_path / "second", "rev-parse", "gitops-lab/seed^{commit}") == git(remote, "rev-parse", "main")
    assert cli("--name", "second", "promote", "--to", "staging").exit_code == 0
    assert remote_version(remote, "staging") == "v2"


def test_promote_to_dev_with_a_version_sets_dev_honestly(lab, cli):
    wc, remote = lab
    refused = cli("promote", "--to", "dev")
    assert refused.exit_code == 2
    assert "promote --to dev --version V" in _last_error_line(refused.stderr)
    result = cli("promote", "--to", "dev", "--version", "v3")
    assert result.exit_code == 0, result.output
    assert "set dev to v3 (was v2)" in result.stdout
    assert remote_version(remote, "dev") == "v3"
    assert git(remote, "log", "-1", "--format=%s", "main") == "Set dev to v3"
    trailers = git(remote, "log", "-1", "--format=%(trailers:only,unfold)", "main")
    assert "Promoted-From" not in trailers and "Previous-Version: v2" in trailers
    history = cli("history", "--env", "dev")
    assert history.exit_code == 0 and "v3" in history.stdout


def test_two_copies_promoting_the_same_version_at_once_the_loser_says_already_done_with_the_winners_commit(
    lab, cli, tmp_path
):
    import os
    import sys

    from helpers.faults import run_cli

    wc, remote = lab
    other, other_state = tmp_path / "other", tmp_path / "state-other"
    assert run_cli(["repo", "init", str(other), "--remote", str(remote)], other_state).returncode == 0
    # Between this copy's fetch and its push, the other copy (a learner named Bea) promotes the same version.
    race_once_before_push(
        wc,
        "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n"
        f"GITOPS_LAB_STATE_DIR='{other_state}' GIT_AUTHOR_NAME=Bea GIT_COMMITTER_NAME=Bea "
        f"PYTHONPATH='{os.pathsep.join(sys.path)}' '{sys.executable}' -m gitops_lab promote --to staging "
        f"--repo '{other}' >/dev/null 2>&1",
    )
    result = cli("promote", "--to", "staging")
    assert result.exit_code == 0, result.output
    winner = git(remote, "log", "-1", "--format=%h", "main")
    assert git(remote, "log", "-1", "--format=%an", "main") == "Bea"
    assert "already done: another copy set staging to v2 first" in result.stdout
    assert f"since {winner} (Promote v2 to staging, by Bea)" in result.stdout
    assert git(remote, "log", "--format=%s", "main").splitlines().count("Promote v2 to staging") == 1
    assert git(wc, "rev-parse", "HEAD") == git(remote, "rev-parse", "main")
    assert git(wc, "status", "--porcelain") == ""


def test_an_approver_outside_approvers_is_refused_at_once_and_nothing_is_published(lab, cli):
    wc, remote = lab
    gates = wc / "gates.yaml"
    gates.write_text(gates.read_text().replace("approvers: []", "approvers: [bob]"))
    git(wc, "commit", "--quiet", "-am", "Only bob approves")
    git(wc, "push", "--quiet", "origin", "main")
    before = git(remote, "rev-parse", "main")
    refused = cli("approve", "--env", "prod", "--version", "v2", "--by", "Alice <alice@example.com>")
    assert refused.exit_code == 2
    line = _last_error_line(refused.stderr)
    assert "Alice <alice@example.com> is not one of the approvers in gates.yaml (bob)" in line
    assert "would never count" in line
    assert git(remote, "rev-parse", "main") == before and git(wc, "rev-parse", "HEAD") == before
    assert cli("approve", "--env", "prod", "--version", "v2", "--by", "bob <bob@example.com>").exit_code == 0


def test_approving_yourself_where_duties_are_separate_is_warned_at_once(lab, cli):
    wc, remote = lab
    me = git(wc, "config", "user.name")
    result = cli("approve", "--env", "prod", "--version", "v2")  # the working copy's own identity
    assert result.exit_code == 0, result.output
    assert "warning: prod needs an approver other than the promoter" in result.stderr
    assert "will not pass the approval gate" in result.stderr
    assert git(remote, "log", "-1", "--format=%an", "main") == me
    other = cli("approve", "--env", "staging", "--version", "v2")  # staging: duties are not separate
    assert other.exit_code == 0 and "warning" not in other.stderr

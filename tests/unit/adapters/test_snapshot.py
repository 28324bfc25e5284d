"""What Git says at a ref, read one way everywhere (``RepoSnapshot``, ``gates.config.config_at``).

Against real repositories in tmp: files at old commits, missing files, bytes
that are not UTF-8, CRLF line ends, and gates.yaml at a ref that differs from
the working tree.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.gitutil import git

from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.pushed import version_at
from gitops_lab.adapters.repo.snapshot import RepoSnapshot
from gitops_lab.assessment.repo_files import CommitFiles
from gitops_lab.errors import DamagedFile, NotFound, UsageError
from gitops_lab.gates.config import CONFIG_FILE, config_at, load_config
from gitops_lab.workflows.verify import expected_from_git

SRC = REPO / "src" / "gitops_lab"


def _commit(repo: Path, files: dict[str, bytes | None], message: str) -> str:
    for name, data in files.items():
        path = repo / name
        if data is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(path))
    git(path, "config", "core.autocrlf", "false")  # the bytes as written, whatever the machine's git says
    return path


def test_a_file_at_an_old_commit_is_what_that_commit_holds(repo):
    old = _commit(repo, {"notes/a.txt": b"first\n"}, "first")
    _commit(repo, {"notes/a.txt": b"second\n", "notes/b.txt": b"new\n"}, "second")
    (repo / "notes/a.txt").write_bytes(b"uncommitted\n")

    at_old = RepoSnapshot(Git(repo), old)
    assert at_old.text("notes/a.txt") == "first\n"
    assert at_old.names("notes") == ["a.txt"]  # b.txt came later
    assert RepoSnapshot(Git(repo), "main").text("notes/a.txt") == "second\n"
    assert RepoSnapshot(Git(repo), "main").names("notes") == ["a.txt", "b.txt"]
    assert RepoSnapshot.working_tree(repo).text("notes/a.txt") == "uncommitted\n"
    assert at_old.commit == old and old[:7] in at_old.where


def test_a_missing_file_is_none_and_a_folder_is_a_typed_error(repo):
    sha = _commit(repo, {"notes/a.txt": b"x\n"}, "one")
    snapshot = RepoSnapshot(Git(repo), "HEAD")
    assert snapshot.text("notes/missing.txt") is None
    assert snapshot.data("nowhere/at/all") is None
    assert snapshot.names("nowhere") == [] and snapshot.names("notes/a.txt") == []
    with pytest.raises(UsageError, match=f"the file notes at {sha[:7]} is a folder, not a file"):
        snapshot.text("notes")
    with pytest.raises(NotFound, match="no-such-branch is not a commit, branch or tag"):
        RepoSnapshot(Git(repo), "no-such-branch")


def test_bytes_that_are_not_utf8_in_an_old_commit_are_one_typed_error_naming_file_and_commit(repo):
    old = _commit(repo, {"overlay.yaml": b"# caf\xe9\nkey: 1\n", "blob.bin": b"a\0b"}, "latin-1")
    _commit(repo, {"overlay.yaml": b"key: 1\n"}, "fixed")
    snapshot = RepoSnapshot(Git(repo), old)
    with pytest.raises(UsageError, match=rf"the file overlay.yaml at {old[:7]} is not UTF-8 text \(byte 5\)") as caught:
        snapshot.text("overlay.yaml")
    assert caught.value.fix and "overlay.yaml" in caught.value.fix
    with pytest.raises(UsageError, match=f"blob.bin at {old[:7]} is binary, not text"):
        snapshot.text("blob.bin")
    # The bytes themselves, and a reading that survives the stray byte (history, status, rollback use it).
    assert snapshot.data("overlay.yaml") == b"# caf\xe9\nkey: 1\n"
    assert snapshot.lenient_text("overlay.yaml") == "# caf\ufffd\nkey: 1\n"


def test_crlf_line_ends_are_kept_as_git_stores_them(repo):
    sha = _commit(repo, {"win.txt": b"one\r\ntwo\r\n"}, "crlf")
    snapshot = RepoSnapshot(Git(repo), sha)
    assert snapshot.text("win.txt") == "one\r\ntwo\r\n"
    assert snapshot.lenient_text("win.txt") == "one\r\ntwo\r\n"
    assert RepoSnapshot.working_tree(repo).text("win.txt") == "one\r\ntwo\r\n"


def test_a_file_over_the_limit_is_refused_before_it_is_read(repo):
    sha = _commit(repo, {"big.txt": b"x" * 2000}, "big")
    with pytest.raises(UsageError, match=f"the file big.txt at {sha[:7]} is 2,000 bytes, more than the 1,000"):
        RepoSnapshot(Git(repo), sha).text("big.txt", limit=1000)


def test_overlays_at_a_ref_and_a_ref_that_is_no_commit(lab):
    wc, _ = lab
    snapshot = RepoSnapshot(Git(wc), "HEAD")
    assert snapshot.model_version("prod") == version_at(Git(wc), "HEAD", "prod")
    assert snapshot.overlay("prod")["namespace"] == snapshot.overlay("prod").get("namespace") != ""
    assert isinstance(snapshot.replicas("dev"), int)
    root = git(wc, "rev-list", "--max-parents=0", "HEAD")
    # The parent of the first commit names no version: the same DamagedFile as a missing line, as before.
    with pytest.raises(DamagedFile, match="overlays/prod/kustomization.yaml must name its model version"):
        version_at(Git(wc), f"{root}^", "prod")


def test_gates_yaml_at_a_ref_is_read_from_that_ref_not_the_working_tree(lab):
    wc, _ = lab
    pushed = RepoSnapshot(Git(wc), "origin/main")
    gates = wc / CONFIG_FILE
    gates.write_text(gates.read_text().replace("sample_size: 116", "sample_size: 7"))
    _commit(wc, {}, "smaller sample, not pushed")

    assert load_config(wc).verification["sample_size"] == 7
    assert config_at(RepoSnapshot.working_tree(wc)).verification["sample_size"] == 7
    assert config_at(pushed).verification["sample_size"] == 116
    # verify reads what was pushed, the unpushed commit leaves it alone
    assert expected_from_git(wc, "dev").settings.sample_size == 116
    assert expected_from_git(wc, "dev", pushed=False).settings.sample_size == 7


def test_a_broken_gates_yaml_at_a_ref_names_the_commit(lab):
    wc, _ = lab
    bad = _commit(wc, {CONFIG_FILE: b"required: {dev: [no-such-gate]}\n"}, "unknown gate")
    latin = _commit(wc, {CONFIG_FILE: b"# caf\xe9\n"}, "latin-1")
    with pytest.raises(DamagedFile, match=f"gates.yaml at {bad[:7]} is invalid: .*no-such-gate"):
        config_at(RepoSnapshot(Git(wc), bad))
    with pytest.raises(UsageError, match=f"the gates file gates.yaml at {latin[:7]} is not UTF-8 text"):
        config_at(RepoSnapshot(Git(wc), latin))


def test_commit_files_of_an_assessment_read_through_the_snapshot(repo):
    sha = _commit(repo, {"docs/design.md": b"# Design\r\n", "docs/x/y.md": b"y"}, "doc")
    files = CommitFiles(Git(repo), "main")
    assert files.read("docs/design.md") == "# Design\r\n"
    assert files.names("docs") == ["design.md"]
    assert sha[:7] in files.where


def test_no_module_reads_a_file_at_a_commit_on_its_own():
    """`git show REF:PATH`, `cat-file blob` and `ls-tree` live in the snapshot only."""
    pattern = re.compile(r"""run\(\s*"(show|ls-tree)"|"cat-file",\s*"(blob|-p|-s)"|"show",\s*f"\{""")
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        if path.name != "snapshot.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []

"""--name can never reach outside its own state folder, and a damaged state file
is one line naming the file, the problem and the fix (fault classes: bad names,
bad files). `down` with missing or damaged state cleans up without fetching kind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitops_lab.state import state_root


def _one_error_line(result, progress_allowed: bool = False) -> str:
    """The one error line; with ``progress_allowed``, progress lines may come before it."""
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert progress_allowed or len(lines) == 1, result.stderr
    return errors[0]


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def two_environments(cli, tmp_path):
    """Two environments with saved state, and a file next to the state root that must survive."""
    for name in ("class-a", "class-b"):
        assert cli("--name", name, "repo", "init", str(tmp_path / name)).exit_code == 0
    sentinel = tmp_path / "precious.txt"
    sentinel.write_text("not gitops-lab's\n")
    return sentinel


BAD_NAMES = ["..", "", "../../x", ".", "a/b", "Class-A", "-lead", "trail-", "a_b", "x" * 64, "a..b"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
@pytest.mark.parametrize("command", [["down"], ["repo", "init", "wc"], ["status"]])
def test_a_name_that_is_not_a_dns_label_is_refused_and_nothing_moves(
    cli, tmp_path, two_environments, name, command, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    before = _files_under(tmp_path)
    result = cli("--name", name, *command)
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "DNS-1123" in line or "empty" in line or "longer than 63" in line
    assert "--name" in line
    assert _files_under(tmp_path) == before
    assert two_environments.read_text() == "not gitops-lab's\n"


def test_the_name_from_the_environment_variable_is_checked_too(cli, tmp_path, two_environments, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_NAME", "..")
    before = _files_under(tmp_path)
    result = cli("down")
    assert result.exit_code == 2
    _one_error_line(result)
    assert _files_under(tmp_path) == before


def test_down_with_a_valid_name_touches_only_its_own_folder(cli, tmp_path, two_environments, monkeypatch):
    monkeypatch.setenv("PATH", _path_without_kind())
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    result = cli("--name", "class-a", "down")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (state_root() / "class-a").iterdir()] == ["backups"]
    assert (state_root() / "class-b" / "state.json").is_file()
    assert two_environments.exists()


# -- damaged state files --------------------------------------------------------------------
DAMAGED_STATE = [
    (b"[]", "a JSON list, not an object"),
    (b'"just a string"', "a JSON string, not an object"),
    (b"\x00\x01\x02gitops\xff", "binary, not text"),
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b"{not json", "not valid JSON"),
    (b'{"repo_path": 5}', "repo_path that is not text"),
    (b'{"repo_path": "x"}' + b" " * 1_000_001, "more than the 1,000,000"),
]


@pytest.mark.parametrize("content,problem", DAMAGED_STATE, ids=[p for _, p in DAMAGED_STATE])
@pytest.mark.parametrize(
    "command", [["promote", "--to", "staging"], ["history", "--env", "dev"], ["status"], ["repo", "init", "wc"]]
)
def test_a_damaged_state_file_is_one_line_naming_file_problem_and_fix(
    cli, tmp_path, content, problem, command, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    state = state_root() / "gitops-lab" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_bytes(content)
    result = cli(*command)
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert str(state) in line and problem in line and f"rm {state}" in line
    assert "no lab working copy is known" not in line
    assert state.read_bytes() == content  # never overwritten behind the user's back


def _path_without_kind() -> str:
    dirs = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "kind").exists()]
    return os.pathsep.join(dirs)


@pytest.mark.parametrize("content", [None, b"[]", b"\x00binary"], ids=["missing", "wrong-shape", "binary"])
def test_down_with_missing_or_damaged_state_never_downloads_kind(cli, tmp_path, monkeypatch, content):
    monkeypatch.setenv("PATH", _path_without_kind())
    cache = tmp_path / "cache"
    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(cache))
    # Any download attempt would go through this proxy, which does not exist: the test would see the error.
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    home = state_root() / "gitops-lab"
    if content is not None:
        home.mkdir(parents=True)
        (home / "state.json").write_bytes(content)
    result = cli("down", "--output", "json")
    assert result.exit_code == 0, result.output
    assert "kind is not installed, so no kind cluster was looked for" in result.stdout
    assert "Finding kind" not in result.stderr
    assert not (cache / "kind").exists()
    if content is not None:
        assert "could not be read" in result.stdout
        assert not (home / "state.json").exists()


def test_an_unwritable_state_folder_is_one_line_with_the_fix(cli, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be\n")
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(blocker / "state"))
    result = cli("repo", "init", str(tmp_path / "wc"))
    assert result.exit_code == 2
    line = _one_error_line(result, progress_allowed=True)
    assert "cannot write" in line and "state.json" in line and "GITOPS_LAB_STATE_DIR" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_state_folder_is_one_line_with_the_fix(cli, tmp_path):
    assert cli("repo", "init", str(tmp_path / "wc")).exit_code == 0
    home = state_root() / "gitops-lab"
    home.chmod(0o500)
    try:
        result = cli("repo", "init", str(tmp_path / "wc"))
        assert result.exit_code == 2
        line = _one_error_line(result, progress_allowed=True)
        assert "cannot write" in line and "writable" in line
    finally:
        home.chmod(0o700)


def test_a_name_that_is_a_dns_label_works_end_to_end(cli, tmp_path):
    result = cli("--name", "class-a", "repo", "init", str(tmp_path / "wc"))
    assert result.exit_code == 0, result.output
    assert (state_root() / "class-a" / "state.json").is_file()
    assert subprocess.run(["git", "-C", str(tmp_path / "wc"), "rev-parse", "HEAD"], capture_output=True).returncode == 0

"""Every file gitops-lab reads gives one line naming the file, the problem and
the fix, whatever it holds: labs.json, gates.yaml, lab.yaml (binary, wrong
shape, oversized). One bad lab never breaks `lab list` for the others."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers.paths import TESTDATA
from helpers.gitutil import git

from gitops_lab.state import state_root

LABS = TESTDATA / "labs"


def _one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


DAMAGED_PROGRESS = [
    (b"[]", "a JSON list, not an object"),
    (b"\x00\x00\x00", "binary, not text"),
    (b'{"labs": []}', "labs is not an object"),
    (b'{"active": 3}', "active is not a lab id"),
    (b'{"labs": {"good": {"step": "two"}}}', "labs.good: step of the wrong type"),
    (b'{"labs": {"good": {"colour": "red"}}}', "labs.good: "),
    (b'{"labs": {"good": 7}}', "labs.good: not an object"),
]


@pytest.mark.parametrize("content,problem", DAMAGED_PROGRESS, ids=[p for _, p in DAMAGED_PROGRESS])
def test_a_damaged_labs_json_is_one_line_naming_it_with_the_fix(lab, cli, monkeypatch, content, problem):
    monkeypatch.setenv("GITOPS_LAB_LABS_DIR", str(LABS))
    path = state_root() / "gitops-lab" / "labs.json"
    path.write_bytes(content)
    for args in (["lab", "list"], ["lab", "check"]):
        result = cli(*args)
        assert result.exit_code == 2
        line = _one_error_line(result)
        assert str(path) in line and problem in line and f"rm {path}" in line
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"\x00\x01binary\x00", "binary, not text"),
        (b"\xff\xfe\xfd", "not UTF-8 text"),
        (b"required:\n  staging: [" + b"x, " * 200_000 + b"x]\n", "more than the 262,144"),
    ],
    ids=["binary", "not-utf8", "oversized"],
)
def test_a_bad_gates_yaml_is_one_line_with_the_fix_and_nothing_changes(lab, cli, content, problem):
    wc, remote = lab
    (wc / "gates.yaml").write_bytes(content)
    git(wc, "commit", "--quiet", "-am", "Break gates.yaml")
    git(wc, "push", "--quiet", "origin", "main")
    head = git(remote, "rev-parse", "main")
    for args in (["promote", "--to", "staging"], ["gate", "run", "--to", "staging"]):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        line = _one_error_line(result)
        assert "gates.yaml" in line and problem in line and "git checkout gitops-lab/seed -- gates.yaml" in line
    assert git(remote, "rev-parse", "main") == head


@pytest.fixture
def labs_dir(tmp_path, monkeypatch):
    """The good test lab, plus labs whose lab.yaml is binary, not UTF-8, and 8 MB."""
    root = tmp_path / "labs"
    shutil.copytree(LABS / "good", root / "good")
    for name, content in (
        ("binary", b"id: binary\n\x00\x00\x00"),
        ("latin1", b"id: latin1\ntitle: caf\xe9\n"),
        ("huge", b"id: huge\nsummary: " + b"x" * 8_000_000 + b"\n"),
    ):
        (root / name).mkdir()
        (root / name / "lab.yaml").write_bytes(content)
    monkeypatch.setenv("GITOPS_LAB_LABS_DIR", str(root))
    return root


def test_bad_lab_files_do_not_break_lab_list_for_the_other_labs(lab, cli, labs_dir):
    result = cli("lab", "list", "--output", "json")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["good"]["progress"] == "not started" and rows["good"]["steps"] == 3
    assert {rows[name]["progress"] for name in ("binary", "latin1", "huge")} == {"invalid"}


@pytest.mark.parametrize(
    "name,problem",
    [
        ("binary", "is binary, not text"),
        ("latin1", "is not UTF-8 text"),
        ("huge", "more than the 262,144"),
    ],
)
def test_a_bad_lab_file_is_one_line_naming_it(lab, cli, labs_dir, name, problem):
    result = cli("lab", "start", name)
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert f"{name}/lab.yaml" in line and problem in line and "docs/authoring-labs.md" in line
    tested = cli("lab", "test", name, "--output", "json")
    assert tested.exit_code != 0
    [case] = [c for lab_ in json.loads(tested.stdout)["labs"] for c in lab_["steps"]]
    assert case["status"] == "failed" and problem in case["message"]

"""Hostile content never gives a traceback, wherever it sits: in the working
tree, in any commit of history, in the state folder. Each case is one line on
stderr naming the file and the fix (exit 2), or, where the tool can carry the
content through unchanged, the command simply works: rolling back must always
be possible, whatever an old commit holds."""

from __future__ import annotations

import json

import pytest
from helpers.gitutil import git

OVERLAY = "overlays/prod/kustomization.yaml"


def _one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _commit_all(wc, message: str) -> None:
    git(wc, "commit", "--quiet", "-am", message)
    git(wc, "push", "--quiet", "origin", "main")


def _set_prod(wc, version: str, extra: bytes = b"") -> None:
    path = wc / OVERLAY
    data = path.read_bytes()
    path.write_bytes(data.replace(b"model-version: v1", b"model-version: " + version.encode()) + extra)


def test_a_latin1_byte_in_an_old_commit_leaves_history_and_rollback_working(lab, cli):
    wc, remote = lab
    _set_prod(wc, "v2", b"# caf\xe9 (Latin-1)\n")
    _commit_all(wc, "Hand edit: prod to v2, from a Latin-1 editor")
    path = wc / OVERLAY
    path.write_bytes(path.read_bytes().replace(b"# caf\xe9 (Latin-1)\n", b""))
    _commit_all(wc, "Drop the Latin-1 comment")

    shown = cli("history", "--env", "prod", "--output", "json")
    assert shown.exit_code == 0, shown.output
    changes = [(e["previous"], e["version"]) for e in json.loads(shown.stdout) if e["changed"]]
    assert changes == [("v1", "v2"), (None, "v1")]
    rolled = cli("rollback", "--env", "prod")
    assert rolled.exit_code == 0, rolled.output
    assert b"model-version: v1" in git(remote, "show", f"main:{OVERLAY}").encode()


def test_a_latin1_byte_in_the_overlay_itself_is_carried_through_a_one_line_rollback(lab, cli):
    wc, remote = lab
    _set_prod(wc, "v2", b"# caf\xe9\n")
    _commit_all(wc, "Hand edit: prod to v2, from a Latin-1 editor")

    assert cli("history", "--env", "prod").exit_code == 0
    rolled = cli("rollback", "--env", "prod")
    assert rolled.exit_code == 0, rolled.output
    assert git(wc, "diff", "--numstat", "HEAD~1", "HEAD").split() == ["1", "1", OVERLAY]
    assert (wc / OVERLAY).read_bytes().endswith(b"# caf\xe9\n")  # the user's byte, untouched


def test_a_crlf_overlay_stays_crlf_and_a_promotion_is_a_one_line_diff(lab, cli):
    wc, remote = lab
    path = wc / "overlays/staging/kustomization.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    _commit_all(wc, "Windows line ends")

    promoted = cli("promote", "--to", "staging")
    assert promoted.exit_code == 0, promoted.output
    assert git(wc, "diff", "--numstat", "HEAD~1", "HEAD").split() == ["1", "1", "overlays/staging/kustomization.yaml"]
    assert b"\r\n" in path.read_bytes() and b"\n" not in path.read_bytes().replace(b"\r\n", b"")
    rolled = cli("rollback", "--env", "staging")
    assert rolled.exit_code == 0, rolled.output
    assert git(wc, "diff", "--numstat", "HEAD~1", "HEAD").split() == ["1", "1", "overlays/staging/kustomization.yaml"]


DAMAGED_ARTIFACTS = [
    ("truncated", lambda text: text[: len(text) // 2], "is not valid JSON"),
    ("metrics-a-list", lambda text: _edit(text, metrics=[0.99]), "metrics is a list, not an object"),
    ("accuracy-a-string", lambda text: _edit(text, metrics={"accuracy": "0.99"}), "metrics.accuracy is a string"),
    ("accuracy-a-boolean", lambda text: _edit(text, metrics={"accuracy": True}), "metrics.accuracy is a boolean"),
    ("accuracy-infinity", lambda text: text.replace('"accuracy": 0.', '"accuracy": Infinity, "x": 0.', 1), "Infinity"),
    ("accuracy-nan", lambda text: text.replace('"accuracy": 0.', '"accuracy": NaN, "x": 0.', 1), "NaN"),
    ("training-a-string", lambda text: _edit(text, training="lots"), "training is a string, not an object"),
    ("evaluation-a-number", lambda text: _edit(text, evaluation=3), "evaluation is a number, not an object"),
    ("huge-integer", lambda text: text.replace('"format": 1', '"format": ' + "9" * 5000, 1), "too long"),
    ("nested-deep", lambda text: text.replace('"format": 1', '"format": ' + "[" * 100_000 + "]" * 100_000), "deep"),
]


def _edit(text: str, **fields) -> str:
    data = json.loads(text)
    data.update(fields)
    return json.dumps(data)


@pytest.mark.parametrize("change,problem", [c[1:] for c in DAMAGED_ARTIFACTS], ids=[c[0] for c in DAMAGED_ARTIFACTS])
def test_a_damaged_model_artifact_is_one_line_naming_it_and_nothing_is_published(lab, cli, change, problem):
    wc, remote = lab
    artifact = wc / "base/models/v2.json"
    artifact.write_text(change(artifact.read_text(encoding="utf-8")), encoding="utf-8")
    _commit_all(wc, "Damage v2's artifact")
    head = git(remote, "rev-parse", "main")
    for args in (["gate", "run", "--to", "staging"], ["promote", "--to", "staging"]):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        line = _one_error_line(result)
        assert "base/models/v2.json" in line and problem in line, line
        assert "git checkout gitops-lab/seed -- base/models/v2.json" in line
        assert len(line) < 400
    assert git(remote, "rev-parse", "main") == head


@pytest.mark.parametrize(
    "content,problem",
    [
        (b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deep"),
        (b'{"name": ' + b"7" * 100_000 + b"}", "too long"),
        (b'{"name": NaN}', "NaN is not a number"),
    ],
    ids=["nested-deep", "huge-number", "nan"],
)
def test_a_state_file_nested_deep_or_with_enormous_numbers_is_one_short_line(cli, content, problem):
    from gitops_lab.state import state_root

    path = state_root() / "gitops-lab" / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    result = cli("status")
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert str(path) in line and problem in line and len(line) < 400
    assert path.read_bytes() == content


def _laughs(levels: int = 9) -> str:
    """Nine levels of nine aliases: 387 million strings to anything that walks the result."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_that_expands_is_refused_at_its_first_alias_in_gates_yaml(lab, cli):
    wc, remote = lab
    (wc / "gates.yaml").write_text(_laughs() + f"required:\n  staging: *l{8}\n", encoding="utf-8")
    _commit_all(wc, "gates.yaml that expands")
    result = cli("gate", "run", "--to", "staging")
    assert result.exit_code != 0
    line = _one_error_line(result)
    assert "gates.yaml line 2" in line and "alias (*l0) is not allowed" in line and len(line) < 400


def test_control_characters_in_a_note_are_refused_before_anything_is_written(lab, cli):
    wc, remote = lab
    head = git(remote, "rev-parse", "main")
    for option, value in (("--note", "looks good\x1b[2J\x1e"), ("--by", "Eve\rAlice <alice@example.com>")):
        result = cli("approve", "--env", "prod", "--version", "v2", option, value)
        assert result.exit_code == 2, result.output
        line = _one_error_line(result)
        assert option in line and "control character" in line
    assert git(remote, "rev-parse", "main") == head
    result = cli("approve", "--env", "prod", "--version", "v2", "--note", "A/B test:\n\tlooked good")
    assert result.exit_code == 0, result.output


def test_a_hand_made_commit_with_separator_bytes_in_its_message_is_read_like_any_other(lab, cli):
    wc, remote = lab
    _set_prod(wc, "v2")
    git(wc, "commit", "--quiet", "-am", "Prod to v2\x1e\x1f by hand", "-m", "body\x1e\x1fwith separators")
    git(wc, "push", "--quiet", "origin", "main")
    shown = cli("history", "--env", "prod", "--output", "json")
    assert shown.exit_code == 0, shown.output
    newest = json.loads(shown.stdout)[0]
    assert newest["commit"] == git(wc, "rev-parse", "HEAD") and newest["version"] == "v2"
    assert newest["author"] == git(wc, "log", "-1", "--format=%an")
    assert newest["subject"] == "Prod to v2\x1e\x1f by hand"  # whole, not cut at a separator


def test_the_policy_gate_renders_only_what_git_would_take_pipes_sockets_and_ignored_folders_left_alone(lab, cli):
    import os
    import socket

    wc, remote = lab
    os.mkfifo(wc / "overlays" / "staging" / "a-pipe")  # untracked, not ignored: a copy would block or fail
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(wc / "a-socket"))
    ignored = wc / "node_modules" / "deep"
    ignored.mkdir(parents=True)
    os.mkfifo(ignored / "pipe")
    (ignored / "big.bin").write_bytes(b"\0" * 1_000_000)
    (wc / ".gitignore").write_text("node_modules/\n", encoding="utf-8")
    try:
        result = cli("gate", "run", "--to", "staging", "--gate", "policy")
    finally:
        server.close()
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    assert "objects, no violations" in result.output


# -- the state folder, class records and learner kits ------------------------------------
def _state_file(*parts: str):
    from gitops_lab.state import state_root

    path = state_root().joinpath("gitops-lab", *parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize(
    "content,problem",
    [
        (b'{"writer": {"username": "learner"}, "reader": {"username": "engine", "password": "p"}}', "for writer"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b'{"writer": ', "not valid JSON"),
    ],
    ids=["no-password", "not-utf8", "truncated"],
)
def test_a_damaged_credentials_file_is_an_error_never_new_passwords(lab, cli, content, problem):
    from gitops_lab.adapters.gitserver.credentials import load_or_create_credentials
    from gitops_lab.errors import UsageError

    path = _state_file("gitserver-credentials.json")
    path.write_bytes(content)
    result = cli("promote", "--to", "staging", "--no-wait")
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert str(path) in line and problem in line and "gitops-lab up" in line
    with pytest.raises(UsageError):
        load_or_create_credentials("gitops-lab")  # what `up` calls: it must not mint new passwords either
    assert path.read_bytes() == content


def test_a_class_whose_credentials_file_is_damaged_keeps_it_and_says_so(cli):
    from gitops_lab.errors import UsageError
    from gitops_lab.classroom.record import class_dir, load_or_create_users

    path = class_dir("gitops-lab") / "credentials.json"
    path.parent.mkdir(parents=True)
    content = b'{"instructor": {"username": "instructor", "password": 7}, "learners": {}}'
    path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        load_or_create_users("gitops-lab", ["ada"])
    assert str(path) in caught.value.one_line() and "class create" in caught.value.one_line()
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    "content,problem",
    [
        (b'{"name": "gitops-lab", "engine": "flux"', "not valid JSON"),
        (b'{"name": "gitops-lab", "engine": 3, "git": {}}', "engine is not text"),
        (b'{"name": "gitops-lab", "engine": "flux", "learners": "ada", "git": {}}', "learners is not a list"),
        (b'{"name": "gitops-lab", "engine": "flux", "git": {"colour": "red"}}', "git is not a Git server record"),
        (b"\xe9t\xe9", "not UTF-8"),
    ],
    ids=["truncated", "engine-number", "learners-string", "git-unknown-field", "latin1"],
)
def test_a_damaged_class_record_is_one_line_naming_it(cli, content, problem):
    from gitops_lab.classroom.record import class_file

    path = class_file("gitops-lab")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    result = cli("class", "status")
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert str(path) in line and problem in line and "class create" in line
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    "kit_json,kubeconfig,problem",
    [
        (b'{"git_url": "http://x/r.git", "git_username": "ada"}', b"apiVersion: v1\n", "lacks git_password"),
        (b'{"git_url": 7, "git_username": "ada", "git_password": "p"}', b"apiVersion: v1\n", "lacks git_url"),
        (b"[1, 2]", b"apiVersion: v1\n", "a JSON list, not an object"),
        (b'{"git_url": "u", "git_username": "a", "git_password": "p", "kubeconfig": "../../etc/passwd"}', b"", "lacks"),
        (b'{"git_url": "u", "git_username": "a", "git_password": "p"}', b"caf\xe9: 1\n", "not UTF-8"),
    ],
    ids=["no-password", "url-number", "a-list", "kubeconfig-escapes", "kubeconfig-latin1"],
)
def test_a_damaged_learner_kit_is_one_line_and_nothing_is_written(cli, tmp_path, kit_json, kubeconfig, problem):
    from gitops_lab.state import state_root

    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "kit.json").write_bytes(kit_json)
    (kit / "kubeconfig").write_bytes(kubeconfig)
    result = cli("class", "join", str(kit))
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert str(kit) in line and problem in line and "instructor" in line
    assert not (state_root() / "gitops-lab").exists()


@pytest.mark.parametrize(
    "encoded",
    [
        "ada\nbob # the tall one\n".encode("utf-16"),
        b"\xef\xbb\xbf" + b"ada\r\nbob\r\n",
        b"ada\nbob\n",
    ],
    ids=["utf-16-bom", "utf-8-bom-crlf", "utf-8"],
)
def test_a_learners_file_from_a_windows_editor_reads_the_same_names(tmp_path, encoded):
    from gitops_lab.classroom.roster import learners_from

    path = tmp_path / "learners.txt"
    path.write_bytes(encoded)
    assert learners_from(str(path), None) == ["ada", "bob"]


def test_a_learners_file_in_latin1_is_one_line_naming_it(cli, tmp_path):
    path = tmp_path / "learners.txt"
    path.write_bytes(b"ada\nren\xe9e\n")
    result = cli("class", "create", "--learners", str(path))
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert str(path) in line and "not UTF-8 text (byte 7)" in line and "save it as UTF-8" in line


# -- --output json on failure, and the exit codes of damaged files ------------------------
def _json_error(result) -> dict:
    """stdout parses as one JSON object holding the error; stderr is the one error line."""
    data = json.loads(result.stdout)
    assert set(data) == {"error"} and set(data["error"]) == {"code", "exit_code", "message", "fix"}
    assert data["error"]["exit_code"] == result.exit_code
    assert _one_error_line(result).startswith(f"error: {data['error']['message'].rstrip('.')}")
    return data["error"]


def test_with_output_json_a_damaged_file_is_one_json_error_on_stdout_and_exit_2(lab, cli):
    wc, remote = lab
    (wc / "gates.yaml").write_text("required: [unclosed\n", encoding="utf-8")
    _commit_all(wc, "Break gates.yaml")
    result = cli("promote", "--to", "staging", "--output", "json")
    assert result.exit_code == 2, result.output
    error = _json_error(result)
    assert error["code"] == "damaged-file" and "gates.yaml line 2 is not valid YAML" in error["message"]
    assert "git checkout gitops-lab/seed -- gates.yaml" in error["fix"]

    overlay = wc / OVERLAY
    overlay.write_text(overlay.read_text(encoding="utf-8").replace("model-version: v1", "model: v1"), encoding="utf-8")
    _commit_all(wc, "Lose prod's version line")
    result = cli("rollback", "--env", "prod", "-o", "json")
    assert result.exit_code == 2, result.output
    assert OVERLAY in _json_error(result)["message"]


def test_with_output_json_a_bad_option_or_value_is_a_json_error_too(lab, cli):
    result = cli("promote", "--to", "staging", "--versoin", "v2", "-o", "json")
    assert result.exit_code == 2
    assert _json_error(result)["code"] == "usage-error"
    result = cli("promote", "--to", "staging", "--version", "v9", "--output=json")
    assert result.exit_code == 2
    assert _json_error(result) == {
        "code": "not-found",
        "exit_code": 2,
        "message": "model version 'v9' does not exist",
        "fix": "use one of: v1, v2, v3, v4, v5, v6",
    }


def test_with_output_json_a_failing_gate_run_prints_its_verdicts_as_the_one_json_document(lab, cli):
    result = cli("gate", "run", "--to", "prod", "--output", "json")
    assert result.exit_code == 4
    assert json.loads(result.stdout)["passed"] is False  # one document: the verdicts, no second object after it


def test_a_gates_yaml_with_thousands_of_problems_is_one_short_line(lab, cli):
    wc, remote = lab
    (wc / "gates.yaml").write_text("".join(f"key{i}: 1\n" for i in range(20_000)), encoding="utf-8")
    _commit_all(wc, "20,000 unknown keys")
    result = cli("gate", "run", "--to", "staging")
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert "gates.yaml is invalid" in line and "and 19990 more" in line and len(line) < 3000


def test_an_escape_sequence_in_a_hand_made_commit_never_reaches_the_terminal(lab, cli):
    wc, remote = lab
    _set_prod(wc, "v2")
    git(wc, "commit", "--quiet", "-am", "Prod to v2 \x1b[2J\x1b]0;owned\x07 \rfake line")
    git(wc, "push", "--quiet", "origin", "main")
    shown = cli("history", "--env", "prod")
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.stdout and "\r" not in shown.stdout and "\x07" not in shown.stdout
    assert "Prod to v2 \\x1b[2J" in shown.stdout and len(shown.stdout.splitlines()) == 3


@pytest.mark.parametrize("record", [b"\xff\xfe", b"[1]", b'{"sha256": ', b"[" * 100_000], ids=str)
def test_a_damaged_download_record_in_the_cache_is_a_cache_miss_not_a_traceback(tmp_path, monkeypatch, record):
    from helpers.httpserve import OneFileServer

    from gitops_lab.adapters.engines.release import fetch_release

    monkeypatch.setenv("GITOPS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    server = OneFileServer(b"kind: ConfigMap\n")
    try:
        first = fetch_release("flux", "v0.0.1", server.url)
        first.path.with_name("install.yaml.json").write_bytes(record)
        again = fetch_release("flux", "v0.0.1", server.url)
    finally:
        server.stop()
    assert again.source == "downloaded" and again.path.read_bytes() == b"kind: ConfigMap\n"


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"kind: Deployment\nmetadata: {name: model-server}\nspec: 7\n", "not the Deployment gitops-lab expects"),
        (b"kind: Deployment\nmetadata: [\n", "not the Deployment gitops-lab expects"),
        (b"a: &a [1]\nb: *a\n", "alias (*a) is not allowed"),
    ],
    ids=["spec-a-number", "not-yaml", "aliases"],
)
def test_what_status_reads_from_a_damaged_base_deployment_is_one_line_naming_it(lab, content, problem):
    from gitops_lab.errors import DamagedFile
    from gitops_lab.workflows.status import git_expectation

    wc, remote = lab
    (wc / "base" / "deployment.yaml").write_bytes(content)
    with pytest.raises(DamagedFile) as caught:
        git_expectation(wc, "dev")
    line = caught.value.one_line()
    assert "base/deployment.yaml" in line and problem in line and caught.value.exit_code == 2

"""Custom gates declared in gates.yaml: real programs, run where the built-in gates run.

The segment gate is the one the validation-gates lab has learners add
(ci/gates/segment_accuracy.py in the seeded repository), judged on the shipped
artifacts: v6 is good overall and bad on pumps below 60 C; v2 is good on every band.
Broken gates (missing, not executable, hanging, garbage, flooding) must fail
closed with a summary and a fix, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest
import yaml
from helpers.gitutil import git, last_trailers, remote_version
from helpers.labenv import lab_test_steps

from gitops_lab.errors import RepoStateError, UsageError
from gitops_lab.gates import load_config, run_gates
from gitops_lab.deadline import Deadline
from gitops_lab.resources import environments_template

SEGMENT_GATE = {
    "command": [
        "{python}",
        "ci/gates/segment_accuracy.py",
        "--artifact",
        "{artifact}",
        "--feature",
        "temperature_c",
        "--bands",
        "60,75",
        "--min-accuracy",
        "0.65",
    ],
    "timeout": 120,
}


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(environments_template(), root)
    return root


def declare(root: Path, gates: dict, required: dict | None = None) -> None:
    path = root / "gates.yaml"
    data = yaml.safe_load(path.read_text())
    data["custom"] = gates
    if required:
        data["required"].update(required)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def run_one(root: Path, spec: dict, version: str = "v2", deadline: Deadline | None = None):
    declare(root, {"probe": spec})
    [result] = run_gates(root, "dev", "staging", version, only=["probe"], deadline=deadline)
    assert result.name == "probe"
    return result


def python_gate(code: str, timeout: float = 60) -> dict:
    return {"command": ["{python}", "-c", code], "timeout": timeout}


# --------------------------------------------------------------------------- #
# the segment gate on the real artifacts
# --------------------------------------------------------------------------- #
def test_v6_passes_every_built_in_model_gate_to_staging(tree):
    """Good overall: the built-in gates alone would let v6 into staging (which runs v1)."""
    results = run_gates(tree, "dev", "staging", "v6", only=["data-quality", "model-eval"])
    assert [(r.name, r.passed) for r in results] == [("data-quality", True), ("model-eval", True)], results


def test_segment_gate_blocks_v6_on_cool_pumps_and_passes_v2(tree):
    declare(tree, {"segment-accuracy": SEGMENT_GATE})
    [bad] = run_gates(tree, "dev", "staging", "v6", only=["segment-accuracy"])
    assert not bad.passed
    assert bad.summary == "1 of 3 temperature_c bands below 0.65; worst temperature_c < 60: 0.5789"
    assert "fail: temperature_c < 60: accuracy 0.5789 < 0.65 (19 rows)" in bad.details
    assert bad.fix == "v6 fails it (its evidence says where): promote another version (--version)"
    [good] = run_gates(tree, "dev", "staging", "v2", only=["segment-accuracy"])
    assert good.passed, good
    assert all(d.startswith("pass: ") for d in good.details) and len(good.details) == 3


def test_required_custom_gate_runs_after_the_built_in_ones(tree):
    declare(tree, {"segment-accuracy": SEGMENT_GATE}, {"staging": ["segment-accuracy", "model-eval"]})
    results = run_gates(tree, "dev", "staging", "v6")
    assert [(r.name, r.passed) for r in results] == [("segment-accuracy", False), ("model-eval", True)]
    # --gate model-eval --custom (the pipeline's evaluation stage) adds the required custom gates.
    results = run_gates(tree, "dev", "staging", "v6", only=["model-eval"], with_custom=True)
    assert [r.name for r in results] == ["model-eval", "segment-accuracy"]


# --------------------------------------------------------------------------- #
# the contract, on hand-made gates
# --------------------------------------------------------------------------- #
def test_a_gate_gets_the_promotion_in_arguments_and_environment(tree):
    code = (
        "import json, os, sys; e = os.environ; "
        "print(json.dumps({'summary': ' '.join(sys.argv[1:]) + ' ' + e['GITOPS_LAB_GATE'] + ' ' + e['GITOPS_LAB_TO'],"
        " 'details': ['pass: ' + e['GITOPS_LAB_ARTIFACT']]}))"
    )
    spec = {"command": ["{python}", "-c", code, "{version}", "{from}", "{to}", "{current}"]}
    result = run_one(tree, spec, "v3")
    assert result.passed and result.summary == "v3 dev staging v1 probe staging", result
    assert result.details == [f"pass: {tree / 'base' / 'models' / 'v3.json'}"]


def test_exit_1_with_evidence_is_a_fail(tree):
    result = run_one(
        tree,
        python_gate("import json; print(json.dumps({'summary': 'too slow', 'details': ['fail: p95 2s']})); exit(1)"),
    )
    assert (result.passed, result.summary, result.details) == (False, "too slow", ["fail: p95 2s"])


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("print('all good')", "printed no JSON evidence (last line: 'all good')"),
        ("pass", "printed no JSON evidence (stdout was empty)"),
        ("print('[1, 2]')", "printed JSON list, not an object"),
        ("print('{\"details\": []}')", 'evidence has no "summary" text'),
        ('print(\'{"summary": "ok", "details": ["looks fine"]}\')', "'looks fine' does not start with"),
        ('print(\'{"summary": "ok", "details": ["fail: x"]}\')', "exited 0 (pass) but its evidence has fail: lines"),
        (
            "import sys; sys.stderr.write('Traceback...\\nKeyError: model\\n'); exit(3)",
            "exited with code 3 (0 is pass, 1 is fail): KeyError: model",
        ),
        ("import sys; sys.stdout.buffer.write(b'\\xff\\xfe'); exit(0)", "printed bytes that are not UTF-8 text"),
    ],
)
def test_garbage_output_fails_closed_naming_the_gate(tree, code, words):
    result = run_one(tree, python_gate(code))
    assert not result.passed
    assert result.summary.startswith("custom gate probe is broken: "), result.summary
    assert words in result.summary
    assert result.fix.endswith("(gates.yaml custom.probe)")


def test_huge_output_is_stopped_not_buffered(tree):
    # Without the cap this would run until the 60 s timeout, holding everything printed.
    result = run_one(tree, python_gate("import sys\nwhile True: sys.stdout.write('y' * 65536)"))
    assert not result.passed
    assert result.summary == "custom gate probe is broken: printed more than 64 KiB"


def test_missing_command_in_the_repository_and_on_path(tree):
    result = run_one(tree, {"command": ["ci/gates/nope.sh"]})
    assert result.summary == "custom gate probe is broken: command ci/gates/nope.sh not found in the repository"
    assert result.fix == "commit the program, or fix `command:` (gates.yaml custom.probe)"
    result = run_one(tree, {"command": ["no-such-gate-program-xyz", "--check"]})
    assert result.summary == "custom gate probe is broken: command no-such-gate-program-xyz not found on PATH"


def test_a_script_that_is_not_executable(tree):
    script = tree / "ci" / "gates" / "check.sh"
    script.write_text('#!/bin/sh\necho \'{"summary": "ok"}\'\n')
    result = run_one(tree, {"command": ["ci/gates/check.sh"]})
    assert result.summary == "custom gate probe is broken: command ci/gates/check.sh is not executable"
    assert "chmod +x ci/gates/check.sh" in result.fix
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert run_one(tree, {"command": ["ci/gates/check.sh"]}).passed


def test_a_script_without_an_interpreter_line_cannot_start(tree):
    script = tree / "ci" / "gates" / "check.sh"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    result = run_one(tree, {"command": ["ci/gates/check.sh"]})
    assert result.summary.startswith("custom gate probe is broken: cannot start ci/gates/check.sh: "), result.summary


def test_timeout_stops_a_hanging_gate_and_its_children(tree, tmp_path):
    marker = tmp_path / "child-pid"
    # The gate starts a child that would outlive it; the whole process group must go.
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); open({str(marker)!r}, 'w').write(str(p.pid)); "
        "time.sleep(600)"
    )
    result = run_one(tree, python_gate(code, timeout=2))
    assert result.summary == "custom gate probe is broken: did not finish within its timeout of 2s"
    assert result.fix == "make it faster, or raise `timeout:` in gates.yaml custom.probe"
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the kill is sent; reaping by init may take a moment
            os.kill(pid, 0)
            time.sleep(0.1)


def test_the_commands_deadline_cuts_a_gate_short(tree):
    result = run_one(tree, python_gate("import time; time.sleep(600)", timeout=600), deadline=Deadline(1))
    assert result.summary.startswith("custom gate probe is broken: stopped at the command's deadline")
    assert "longer --timeout" in result.fix


# --------------------------------------------------------------------------- #
# gates.yaml
# --------------------------------------------------------------------------- #
def test_custom_gates_are_validated_with_every_problem_at_once(tree):
    declare(
        tree,
        {
            "policy": {"command": ["x"]},
            "Bad_Name": {"command": ["x"]},
            "no-command": {"timeout": 5},
            "slow": {"command": ["x"], "timeout": 0},
            "typo": {"command": ["x"], "timout": 5},
        },
        {"staging": ["no-command", "lint"]},
    )
    with pytest.raises(RepoStateError) as caught:
        load_config(tree)
    message = caught.value.one_line()
    for words in (
        "custom.policy: policy is a built-in gate",
        "custom.Bad_Name: a gate name is lowercase words joined by dashes",
        "custom.no-command.command: expected a non-empty list",
        "custom.slow.timeout: expected seconds, more than 0 and at most 3600",
        "custom.typo: unknown key 'timout'",
        "required.staging: unknown gate 'lint'",
    ):
        assert words in message, message
    assert "unknown gate 'no-command'" not in message  # declared, though wrongly: that problem is named instead


def test_an_undeclared_gate_name_is_refused(tree):
    with pytest.raises(UsageError, match="unknown gate 'segment-accuracy'"):
        run_gates(tree, "dev", "staging", "v6", only=["segment-accuracy"])


# --------------------------------------------------------------------------- #
# promote, gate run: recorded and refused like the built-in gates
# --------------------------------------------------------------------------- #
@pytest.fixture
def segment_lab(lab):
    wc, remote = lab
    git(wc, "config", "user.name", "Pat Promoter")
    declare(wc, {"segment-accuracy": SEGMENT_GATE}, {"staging": ["model-eval", "segment-accuracy"]})
    git(wc, "commit", "--quiet", "-am", "Require accuracy on every temperature band for staging")
    git(wc, "push", "--quiet", "origin", "main")
    return wc, remote


def test_promote_refuses_v6_and_records_the_custom_verdict_for_v2(segment_lab, cli):
    wc, remote = segment_lab
    head = git(remote, "rev-parse", "main")
    result = cli("promote", "--to", "staging", "--version", "v6", "--repo", str(wc))
    assert result.exit_code == 4, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: promotion of v6 to staging blocked by 1 failing gate: segment-accuracy (1 of 3")
    assert "; segment-accuracy: v6 fails it (its evidence says where): promote another version (--version);" in line
    assert git(remote, "rev-parse", "main") == head and remote_version(remote, "staging") == "v1"

    result = cli("promote", "--to", "staging", "--version", "v2", "--repo", str(wc))
    assert result.exit_code == 0, result.output
    trailers = last_trailers(remote)
    assert (
        "Gate-Segment-Accuracy: pass (every temperature_c band >= 0.65; worst 60 <= temperature_c < 75: 0.7465)"
        in trailers
    )


def test_gate_run_of_a_broken_gate_is_one_line_and_exit_4(segment_lab, cli):
    wc, _ = segment_lab
    declare(wc, {"segment-accuracy": {"command": ["ci/gates/missing.py"], "timeout": 5}})
    result = cli("gate", "run", "--to", "staging", "--version", "v2", "--gate", "segment-accuracy", "--repo", str(wc))
    assert result.exit_code == 4
    [line] = result.stderr.strip().splitlines()
    assert "fails 1 gate: segment-accuracy" in line
    assert "commit the program, or fix `command:` (gates.yaml custom.segment-accuracy)" in line
    assert "Traceback" not in result.output
    assert "command ci/gates/missing.py not found in the repository" in result.stdout


# The pipeline's evaluation stage runs the custom gates gates.yaml requires for staging (v6 fails it, then
# passes without the gate): tests/unit/workflows/test_pipeline_stages.py, on python -m gitops_lab.pipeline.


def test_the_custom_gates_lab_passes_lab_test_without_a_cluster(lab, cli):
    """`lab test`: after setup the check fails (no gate yet), after the solution it passes, then reset."""
    wc, _ = lab
    assert lab_test_steps(cli, wc, "custom-gates") == [
        ("add-segment-gate", "passed"),
        ("promote-through-your-gate", "passed"),
        ("reset", "passed"),
    ]

"""Gates inside `promote` and `gate run`, against a real bare remote.

A failing gate refuses the promotion with exit code 4 and one line on stderr,
leaving the working copy and the remote exactly as they were; passing gates are
recorded in the promotion commit's trailers, which `history` reads back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers.gitutil import git, last_trailers, remote_version
import yaml

from gitops_lab.adapters.renderer import KUSTOMIZE_VAR


from helpers.renderer import needs_kustomize

pytestmark = needs_kustomize


def snapshot(wc: Path, remote: Path) -> tuple[str, str, str]:
    return git(wc, "rev-parse", "HEAD"), git(remote, "rev-parse", "main"), git(wc, "status", "--porcelain")


def assert_refused(result, *words: str) -> str:
    assert result.exit_code == 4, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def lab(lab):
    """The shared seeded working copy, committing as Pat Promoter."""
    git(lab[0], "config", "user.name", "Pat Promoter")
    return lab


def test_v3_is_blocked_at_dev_to_staging_and_nothing_changes(lab, cli):
    wc, remote = lab
    # dev runs v3 first, as a learner would try it there.
    assert cli("promote", "--to", "dev", "--from", "staging", "--version", "v3", "--repo", str(wc)).exit_code == 0
    before = snapshot(wc, remote)
    result = cli("promote", "--from", "dev", "--to", "staging", "--repo", str(wc))
    line = assert_refused(
        result,
        "promotion of v3 to staging blocked by 2 failing gates",
        "data-quality (temperature_c drift",
        "model-eval (accuracy 0.5172 < 0.65",
        "gitops-lab gate run --from dev --to staging --version v3",
        "nothing was changed",
    )
    assert "policy (" not in line  # the policy gate passed
    assert snapshot(wc, remote) == before
    assert remote_version(remote, "staging") == "v1"


def test_promotion_to_dev_runs_no_gates(lab, cli):
    wc, remote = lab
    result = cli("promote", "--from", "staging", "--to", "dev", "--version", "v3", "--repo", str(wc))
    assert result.exit_code == 0, result.output
    assert not any(t.startswith("Gate-") for t in last_trailers(remote))


def test_prod_without_approval_is_blocked(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging", "--repo", str(wc)).exit_code == 0
    before = snapshot(wc, remote)
    result = cli("promote", "--to", "prod", "--repo", str(wc))
    assert_refused(
        result,
        "promotion of v2 to prod blocked by 1 failing gate: approval",
        "record an approval with `gitops-lab approve --env prod --version v2 --by 'NAME <EMAIL>'`",
    )
    assert snapshot(wc, remote) == before


def test_approved_promotion_records_every_verdict_and_history_shows_them(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging", "--repo", str(wc)).exit_code == 0
    approved = cli(
        "approve", "--env", "prod", "--version", "v2", "--by", "alice <alice@example.com>", "--repo", str(wc)
    )
    assert approved.exit_code == 0, approved.output
    approval = git(remote, "rev-parse", "main")
    result = cli("promote", "--to", "prod", "--repo", str(wc), "--output", "json")
    assert result.exit_code == 0, result.output
    assert remote_version(remote, "prod") == "v2"
    expected_gates = {
        "Gate-Data-Quality": "pass (269 rows, 3.8% dropped, max drift 0.10 sd, PSI 0.01)",
        "Gate-Model-Eval": "pass (accuracy 0.8276 >= 0.65)",
        "Gate-Policy": "pass (6 objects, no violations)",
        "Gate-Approval": f"pass (approved by alice in {approval[:7]})",
    }
    assert last_trailers(remote)[-4:] == [f"{k}: {v}" for k, v in expected_gates.items()]
    assert {k: v for k, v in json.loads(result.stdout)["trailers"].items() if k.startswith("Gate-")} == expected_gates
    assert "gates for prod: data-quality pass, model-eval pass, policy pass, approval pass" in result.stderr

    history = json.loads(cli("history", "--env", "prod", "--repo", str(wc), "--output", "json").stdout)
    assert [(e["action"], e["version"]) for e in history] == [("promote", "v2"), ("approve", "v2"), ("seed", "v1")]
    assert {k: v for k, v in history[0]["trailers"].items() if k.startswith("Gate-")} == expected_gates
    assert history[1]["trailers"]["Approved-By"] == "alice"


def test_an_approval_lets_one_promotion_through(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging", "--repo", str(wc)).exit_code == 0
    assert (
        cli(
            "approve", "--env", "prod", "--version", "v2", "--by", "alice <alice@example.com>", "--repo", str(wc)
        ).exit_code
        == 0
    )
    assert cli("promote", "--to", "prod", "--repo", str(wc)).exit_code == 0
    # Roll back (no gates: always possible), then the same version needs a new approval.
    assert cli("rollback", "--env", "prod", "--repo", str(wc)).exit_code == 0
    assert remote_version(remote, "prod") == "v1"
    assert_refused(cli("promote", "--to", "prod", "--repo", str(wc)), "approval")
    assert (
        cli("approve", "--env", "prod", "--version", "v2", "--by", "bob <bob@example.com>", "--repo", str(wc)).exit_code
        == 0
    )
    assert cli("promote", "--to", "prod", "--repo", str(wc)).exit_code == 0
    assert any(t.startswith("Gate-Approval: pass (approved by bob in ") for t in last_trailers(remote))


def test_rollback_runs_no_gates_even_when_every_gate_would_fail(lab, cli):
    wc, remote = lab
    assert cli("promote", "--to", "staging", "--repo", str(wc)).exit_code == 0
    gates = wc / "gates.yaml"
    gates.write_text(gates.read_text().replace("min_score: null", "min_score: 0.99"))
    git(wc, "commit", "--quiet", "-am", "Raise the bar")
    git(wc, "push", "--quiet", "origin", "main")  # a write publishes only its own commit
    blocked = cli("promote", "--to", "staging", "--version", "v1", "--repo", str(wc))
    assert_refused(blocked, "model-eval (accuracy 0.7069 < 0.99")
    result = cli("rollback", "--env", "staging", "--repo", str(wc))
    assert result.exit_code == 0, result.output
    assert remote_version(remote, "staging") == "v1"


def test_gates_change_through_git_including_from_the_remote(lab, cli, tmp_path):
    wc, remote = lab
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", str(remote), str(other)], check=True)
    config = yaml.safe_load((other / "gates.yaml").read_text())
    config["required"]["staging"] = []
    (other / "gates.yaml").write_text(yaml.safe_dump(config))
    git(other, "commit", "--quiet", "-am", "Instructor: no gates for staging in this exercise")
    git(other, "push", "--quiet", "origin", "main")
    # The working copy has not fetched yet; promote catches up and uses the pushed gates.
    result = cli("promote", "--to", "staging", "--version", "v3", "--repo", str(wc))
    assert result.exit_code == 0, result.output
    assert remote_version(remote, "staging") == "v3"
    assert not any(t.startswith("Gate-") for t in last_trailers(remote))


def test_skipped_gates_are_recorded_with_who_skipped(lab, cli):
    wc, remote = lab
    result = cli(
        "promote",
        "--to",
        "staging",
        "--version",
        "v3",
        "--skip-gate",
        "data-quality",
        "--skip-gate",
        "model-eval",
        "--repo",
        str(wc),
    )
    assert result.exit_code == 0, result.output
    assert last_trailers(remote)[-3:] == [
        "Gate-Data-Quality: skipped by Pat Promoter",
        "Gate-Model-Eval: skipped by Pat Promoter",
        "Gate-Policy: pass (6 objects, no violations)",
    ]


@pytest.mark.parametrize(
    "args,code,words",
    [
        (["--to", "prod", "--skip-gate", "approval"], 2, ["the approval gate cannot be skipped", "gitops-lab approve"]),
        (["--to", "dev", "--from", "staging", "--skip-gate", "policy"], 2, ["dev does not require it"]),
        (["--to", "staging", "--skip-gate", "lint"], 2, ["unknown gate 'lint'"]),
        (["--to", "staging", "--version", "v3", "--skip-gate", "model-eval"], 4, ["1 failing gate: data-quality"]),
    ],
    ids=["approval-locked", "not-required", "unknown", "one-skip-is-not-enough"],
)
def test_bad_skips_are_refused_and_change_nothing(lab, cli, args, code, words):
    wc, remote = lab
    before = snapshot(wc, remote)
    result = cli("promote", *args, "--repo", str(wc))
    assert result.exit_code == code, result.output
    [line] = result.stderr.strip().splitlines()
    for word in words:
        assert word in line, line
    assert snapshot(wc, remote) == before


def test_promote_without_kustomize_fails_with_a_fix_and_changes_nothing(lab, cli, tmp_path, monkeypatch):
    wc, remote = lab
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip(), bin_dir / "git")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv(KUSTOMIZE_VAR, raising=False)
    before = snapshot(wc, remote)
    result = cli("promote", "--to", "staging", "--repo", str(wc))
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "neither `kustomize` nor `kubectl` is installed" in line and "install kubectl" in line
    assert snapshot(wc, remote) == before


# --------------------------------------------------------------------------- #
# gitops-lab gate run
# --------------------------------------------------------------------------- #
def test_gate_run_passes_with_a_table(lab, cli):
    wc, remote = lab
    result = cli("gate", "run", "--to", "staging", "--repo", str(wc))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "GATE          VERDICT  SUMMARY",
        "data-quality  pass     269 rows, 3.8% dropped, max drift 0.10 sd, PSI 0.01",
        "model-eval    pass     accuracy 0.8276 >= 0.65",
        "policy        pass     6 objects, no violations",
    ]
    assert result.stderr == ""


def test_gate_run_fails_v3_with_details_and_exit_4(lab, cli):
    wc, remote = lab
    before = snapshot(wc, remote)
    result = cli("gate", "run", "--to", "staging", "--version", "v3", "--repo", str(wc))
    assert result.exit_code == 4
    out = result.stdout.splitlines()
    assert out[1].split()[:2] == ["data-quality", "fail"] and out[2].split()[:2] == ["model-eval", "fail"]
    assert out[3].split()[:2] == ["policy", "pass"]
    assert "  fail: temperature_c drift: mean 154.444 vs reference 68.0177, shift 9.52 sd (max 0.25)" in out
    assert "  fail: accuracy 0.5172 < 0.65" in out
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: v3 from dev to staging fails 2 gates: data-quality, model-eval")
    assert snapshot(wc, remote) == before


def test_gate_run_json_and_single_gate(lab, cli):
    wc, remote = lab
    result = cli("gate", "run", "--to", "prod", "--gate", "approval", "--output", "json", "--repo", str(wc))
    assert result.exit_code == 4
    data = json.loads(result.stdout)
    assert (data["from"], data["to"], data["version"], data["passed"]) == ("staging", "prod", "v1", False)
    [gate] = data["gates"]
    assert (gate["name"], gate["verdict"], gate["passed"]) == ("approval", "fail", False)
    seed = git(remote, "rev-parse", "--short=7", "gitops-lab/seed^{commit}")
    assert (
        gate["summary"]
        == f"no approval of v1 for prod since prod's last change of version ({seed}, Seed the lab environments)"
    )


def test_gate_run_for_an_environment_without_gates(lab, cli):
    wc, remote = lab
    result = cli("gate", "run", "--to", "dev", "--from", "staging", "--version", "v3", "--repo", str(wc))
    assert result.exit_code == 0
    assert result.stdout.strip() == "dev requires no gates (gates.yaml); v3 from staging may be promoted"

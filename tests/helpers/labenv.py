"""A seeded working copy with a bare remote, a lab folder and a CLI runner: what the lab tests start from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_lab.cli import main


def seeded_lab_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labs: Path | None = None):
    """(cli, working copy, bare remote); ``labs`` is the lab folder to use, None for the shipped labs."""
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    if labs is None:
        monkeypatch.delenv("GITOPS_LAB_LABS_DIR", raising=False)
    else:
        monkeypatch.setenv("GITOPS_LAB_LABS_DIR", str(labs))
    monkeypatch.delenv("GITOPS_LAB_REPO", raising=False)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    wc = tmp_path / "wc"
    assert cli("repo", "init", str(wc), "--remote", str(remote)).exit_code == 0
    return cli, wc, remote


def lab_test_steps(cli, wc: Path, lab_id: str) -> list[tuple[str, str]]:
    """``gitops-lab lab test LAB_ID`` on ``wc`` (no cluster: the checks that need none), which must pass:
    each of the lab's steps, then ``reset``, with its status."""
    result = cli("lab", "test", lab_id, "--repo", str(wc), "--output", "json")
    assert result.exit_code == 0, result.output
    [tested] = json.loads(result.stdout)["labs"]
    return [(case["step"], case["status"]) for case in tested["steps"]]


def start_and_solve(cli, wc: Path, lab_id: str, step: str) -> None:
    """Start the lab ``lab_id`` on ``wc`` and apply the solution of ``step`` (and so run the next step's setup)."""
    assert cli("lab", "start", lab_id, "--repo", str(wc)).exit_code == 0
    result = cli("lab", "solve", step, "--repo", str(wc))
    assert result.exit_code == 0, result.output

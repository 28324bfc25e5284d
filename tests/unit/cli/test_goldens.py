"""What the main commands print, compared whole with golden files (tests/testdata/golden/).

`pytest tests/unit/cli/test_goldens.py --update-goldens` rewrites them; volatile parts
(commit ids, dates, ports, step durations, a measured latency, the test's folder)
are normalised in tests/helpers/golden.py. `verify` runs here against the model
server as a local process (`--url`, as tests/unit/workflows/test_verify.py runs it). `status` and
`class status` need a cluster: their goldens are taken on the testbed, for Argo CD
and for Flux, in tests/e2e/testbed/test_goldens_e2e.py.
"""

from __future__ import annotations

import pytest
from helpers.gitutil import git
from helpers.golden import assert_golden

from gitops_lab.adapters.repo import RepoLayout


@pytest.fixture
def gitops_lab(cli):
    """The CLI as a user's shell names it (Click's messages quote the program name); cli's state folder."""
    from click.testing import CliRunner

    from gitops_lab.cli import main

    return lambda *args: CliRunner().invoke(main, list(args), prog_name="gitops-lab", catch_exceptions=False)


@pytest.fixture
def author(monkeypatch):
    """One author for every commit, so the history table's AUTHOR column is fixed."""
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Pat Promoter")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "pat@example.com")


def test_lab_list_on_a_fresh_machine(gitops_lab):
    result = gitops_lab("lab", "list")
    assert result.exit_code == 0, result.output
    assert_golden("lab-list.txt", result.stdout)


def test_history_of_a_promotion_a_revert_and_a_hand_edit(author, lab, cli, gitops_lab, tmp_path):
    wc, _ = lab
    assert cli("promote", "--to", "staging").exit_code == 0
    git(wc, "revert", "--no-edit", "HEAD")
    RepoLayout(wc).set_model_version("staging", "v3")
    git(wc, "commit", "-qam", "Try v3 in staging by hand")
    git(wc, "push", "-q", "origin", "main")
    result = gitops_lab("history", "--env", "staging")
    assert result.exit_code == 0, result.output
    assert_golden("history-staging.txt", result.stdout, tmp_path)


def test_history_of_an_unknown_environment_is_one_error_line(lab, gitops_lab, tmp_path):
    result = gitops_lab("history", "--env", "qa")
    assert result.exit_code == 2
    assert_golden("history-unknown-env.stderr", result.stderr, tmp_path)


def test_starting_an_unknown_lab_is_one_error_line_naming_the_labs(lab, gitops_lab, tmp_path):
    result = gitops_lab("lab", "start", "nope")
    assert result.exit_code == 2
    assert_golden("lab-start-unknown.stderr", result.stderr, tmp_path)


def _verify(gitops_lab, wc, server, *args: str):
    return gitops_lab("verify", "--env", "dev", "--repo", str(wc), "--url", f"http://127.0.0.1:{server.port}", *args)


def test_verify_of_a_good_version_prints_every_check(lab, gitops_lab, start_server, tmp_path):
    wc, _ = lab
    result = _verify(gitops_lab, wc, start_server("v2"))
    assert result.exit_code == 0, result.output
    assert_golden("verify-dev-v2.txt", result.stdout, tmp_path)


def test_verify_json_of_a_good_version(lab, gitops_lab, start_server, tmp_path):
    wc, _ = lab
    result = _verify(gitops_lab, wc, start_server("v2"), "--output", "json")
    assert result.exit_code == 0, result.output
    assert_golden("verify-dev-v2.json", result.stdout, tmp_path)


def test_verify_of_a_version_that_fails_live_accuracy_exits_4(lab, gitops_lab, start_server, tmp_path):
    wc, _ = lab
    result = _verify(gitops_lab, wc, start_server("v4"), "--version", "v4")
    assert result.exit_code == 4, result.output
    assert_golden("verify-dev-v4-fails.txt", result.stdout, tmp_path)
    assert_golden("verify-dev-v4-fails.stderr", result.stderr, tmp_path)

"""What `status` and `class status` print on the testbed, for Argo CD and for Flux, compared whole
with golden files (tests/testdata/golden/; the commands without a cluster: tests/test_goldens.py).

`pytest tests/e2e/test_goldens_e2e.py --update-goldens` rewrites them; commit ids, ports and the
test's folder are normalised in tests/helpers/golden.py. Each golden is taken once the lab has
settled (every environment ok), so it holds what a settled lab looks like, not a moment of a sync.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable

import pytest
from helpers.golden import assert_golden

from gitops_lab.adapters.repo.git import PASSWORD_VAR, USERNAME_VAR

pytestmark = pytest.mark.testbed

# Only a bound on how long an engine may take to settle after `up` or a reset; nothing asserts on time.
SETTLE = 120


def settled(read: Callable[[], tuple], ok: Callable[[tuple], bool]) -> tuple:
    """``read()`` again until ``ok`` of it, under SETTLE; what it read last."""
    deadline = time.monotonic() + SETTLE
    while True:
        got = read()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(2)


def test_status_of_a_lab_just_up(engine_on_testbed, tmp_path):
    on_testbed = engine_on_testbed
    up = on_testbed.up()
    assert up.exit_code == 0, up.output

    text, as_json = settled(
        lambda: (on_testbed.cli("status"), on_testbed.cli("status", "--output", "json")),
        lambda got: all(result.exit_code == 0 for result in got),
    )
    assert text.exit_code == 0, text.output
    assert as_json.exit_code == 0, as_json.output
    assert_golden(f"status-{on_testbed.engine}.txt", text.stdout, tmp_path)
    assert_golden(f"status-{on_testbed.engine}.json", as_json.stdout, tmp_path)


@pytest.fixture(params=["argocd", "flux"])
def instructor(request, testbed_cluster, tmp_path, monkeypatch):
    """(engine, cli, create): the instructor's CLI, and `class create` of a class on the testbed whose
    repositories gitops-lab's own Git server serves on loopback. The class is deleted afterwards."""
    from click.testing import CliRunner

    from gitops_lab.cli import main
    from helpers.githttp import RunningServer, free_port
    from testbed.binaries import bin_dir

    engine = request.param
    request.getfixturevalue(f"testbed_{engine}")
    monkeypatch.setenv("PATH", f"{os.environ['PATH']}{os.pathsep}{bin_dir()}")
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "instructor"))
    for var in ("GITOPS_LAB_REPO", "GITOPS_LAB_LABS_DIR", USERNAME_VAR, PASSWORD_VAR):
        monkeypatch.delenv(var, raising=False)
    root, users = tmp_path / "git", tmp_path / "git-users"
    root.mkdir()
    users.write_text("")
    server = RunningServer(root, users, free_port())
    server.start()
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    def create(count: int):
        return cli(
            "class",
            "create",
            "--count",
            str(count),
            "--engine",
            engine,
            "--kubeconfig",
            testbed_cluster.kubeconfig,
            "--git-root",
            str(root),
            "--git-base-url",
            f"http://127.0.0.1:{server.port}",
            "--git-auth-file",
            str(users),
            "--timeout",
            "300",
        )

    yield engine, cli, create
    if (tmp_path / "instructor" / "gitops-lab" / "class" / "class.json").exists():
        cli("class", "delete", "--timeout", "120")
    server.stop()


def test_class_status_of_a_learner_in_a_lab_and_one_not(instructor, tmp_path):
    engine, cli, create = instructor
    created = create(2)
    assert created.exit_code == 0, created.output
    started = cli("class", "reset", "--learner", "learner-01", "--lab", "gitops-basics", "--timeout", "120")
    assert started.exit_code == 0, started.output

    def every_environment_ok(got: tuple) -> bool:
        text, as_json = got
        if text.exit_code or as_json.exit_code:
            return False
        rows = json.loads(as_json.stdout)
        return all(e["state"] == "ok" for row in rows for e in row["environments"].values())

    text, as_json = settled(
        lambda: (cli("class", "status"), cli("class", "status", "--output", "json")), every_environment_ok
    )
    assert every_environment_ok((text, as_json)), (text.output, as_json.output)
    assert_golden(f"class-status-{engine}.txt", text.stdout, tmp_path)
    assert_golden(f"class-status-{engine}.json", as_json.stdout, tmp_path)

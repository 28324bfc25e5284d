"""The forge adapter when the testbed's real Gitea is not ready yet, silent or down (issue 20's faults;
the loopback stand-ins for a broken Gitea: tests/unit/adapters/test_forge_faults.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from gitops_lab.adapters.forge.gitea import GiteaAPI
from gitops_lab.adapters.forge.seed import LabRepository, load_or_create_accounts, seed_lab
from gitops_lab.deadline import command_deadline
from gitops_lab.errors import ForgeError


def test_seeding_a_real_gitea_before_it_listens_waits_for_it(tmp_path: Path):
    """A private Gitea (not the session's), started and seeded at once: its new database is migrated
    first (seconds), and seeding waits for that rather than failing on a refused connection. Then the
    same Gitea stopped with SIGSTOP (silent) and killed (down): one line each, by the deadline."""
    from testbed.binaries import FORGE_ONLY, missing_reason
    from testbed.forge import app_ini, gitea_binary
    from testbed.processes import Proc, free_port, stop_all

    reason = missing_reason(FORGE_ONLY)
    if reason:
        pytest.skip(reason)
    from gitops_lab.adapters.forge.seed import gitea_cli_admin_creator

    root, logs = tmp_path / "gitea", tmp_path / "logs"
    root.mkdir()
    logs.mkdir()
    port = free_port()
    config = root / "app.ini"
    config.write_text(app_ini(root, port), encoding="utf-8")
    cli = [str(gitea_binary()), "--config", str(config), "--work-path", str(root)]
    proc = Proc("gitea-not-ready", [*cli[:1], "web", *cli[1:]], logs, cwd=root)
    url = f"http://127.0.0.1:{port}"
    accounts = load_or_create_accounts(tmp_path / "forge-credentials.json", learner="late-learner")
    try:
        proc.start()
        with command_deadline(150):
            changes = seed_lab(url, accounts, gitea_cli_admin_creator(cli), LabRepository("lab"))
        assert changes[0] == "created admin account gitops-admin"
        assert "created repository late-learner/lab" in changes
        learner = GiteaAPI(url, accounts.learner)
        assert learner.whoami() is not None

        # the same Gitea stopped (SIGSTOP: its socket still accepts, nothing answers), then killed
        os.kill(proc.pid, signal.SIGSTOP)
        with command_deadline(2), pytest.raises(ForgeError) as silent:
            learner.whoami()
        assert silent.value.message.startswith(f"Gitea at {url} did not answer GET /user")
        os.kill(proc.pid, signal.SIGCONT)
        assert learner.whoami() is not None  # answers again once it runs
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.popen is not None
        proc.popen.wait(10)
        with command_deadline(10), pytest.raises(ForgeError) as down:
            learner.whoami()
        assert down.value.message.startswith(f"cannot reach Gitea at {url} (GET /user)")
    finally:
        if proc.alive():
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process would ignore the SIGTERM below
        assert stop_all([proc], [port]) == []

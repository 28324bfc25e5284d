"""Gitea on loopback, from the testbed's pinned build (bin/gitea, share/gitea):
a temp work folder, SQLite, no SSH, no mail, webhooks allowed to loopback."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.forge.seed import ForgeAccounts, LabRepository, gitea_cli_admin_creator, seed_lab

from .binaries import bin_dir
from .build import cache_dir
from .processes import Proc, free_port, group_rss, http_ok, stop_all, wait_until

START_SECONDS = 120.0


def gitea_binary() -> Path:
    return bin_dir() / "gitea"


def app_ini(root: Path, port: int) -> str:
    """Gitea's configuration for one test instance: everything under ``root``."""
    # Gitea refuses to run as root unless told; the test machines run as root.
    as_root = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n" if os.geteuid() == 0 else ""
    return f"""APP_NAME = gitops-lab testbed
RUN_MODE = prod
WORK_PATH = {root}
{as_root}
[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {port}
ROOT_URL = http://127.0.0.1:{port}/
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = {root}/data
; this build has no bindata: templates, options and public/ are read from here
STATIC_ROOT_PATH = {cache_dir() / "share" / "gitea"}

[database]
DB_TYPE = sqlite3
PATH = {root}/data/gitea.db

[repository]
ROOT = {root}/repositories
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = {secrets.token_hex(32)}
; webhooks to the tests' receiver on 127.0.0.1 (Gitea's default allows only external hosts)
ALLOWED_HOST_LIST = loopback

[webhook]
; Gitea's default of 5 s: a delivery to an engine's endpoint on a loaded 2-core machine (the whole suite
; running) was recorded with no answer at all (status 0), which the webhook tests read as a fault of the engine
DELIVER_TIMEOUT = 30

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true

[mailer]
ENABLED = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[actions]
ENABLED = false

[cron.update_checker]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[log]
MODE = console
LEVEL = Info
ROOT_PATH = {root}/log
"""


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery as Gitea recorded it."""

    url: str
    after: str  # a push event's new head commit
    delivered: bool
    succeeded: bool
    status: int  # the receiver's HTTP status; 0 before delivery or when the connection failed


@dataclass
class Gitea:
    root: Path
    port: int
    proc: Proc
    config: Path
    started_in: float = 0.0  # seconds from exec to the API answering

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self) -> list[str]:
        """Gitea's CLI against this instance's configuration (``gitea_cli_admin_creator`` takes it)."""
        return [str(gitea_binary()), "--config", str(self.config), "--work-path", str(self.root)]

    def seed_lab(self, accounts: ForgeAccounts, repository: LabRepository) -> list[str]:
        """``seed_lab`` on this Gitea, its admin account created by this instance's CLI: the changes it made."""
        return seed_lab(self.url, accounts, gitea_cli_admin_creator(self.cli()), repository)

    def check_health(self) -> None:
        self.proc.check()

    def deliveries(self) -> list[Delivery]:
        """Every webhook delivery Gitea recorded (its ``hook_task`` table: what its settings page lists).

        Gitea's API of the pinned release has no endpoint for them, so they are read from its
        SQLite database, read-only, while it runs."""
        db = sqlite3.connect(f"file:{self.root / 'data' / 'gitea.db'}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute(
                "SELECT w.url, t.is_delivered, t.is_succeed, t.payload_content, t.response_content"
                " FROM hook_task t JOIN webhook w ON w.id = t.hook_id ORDER BY t.id"
            ).fetchall()
        finally:
            db.close()
        out = []
        for url, delivered, succeeded, payload, response in rows:
            after = (json.loads(payload or "{}") or {}).get("after", "")
            status = (json.loads(response or "{}") or {}).get("status", 0) if delivered else 0
            out.append(Delivery(url, after, bool(delivered), bool(succeeded), int(status or 0)))
        return out

    def rss(self) -> dict[str, int]:
        return {"gitea": group_rss(self.proc.pid)} if self.proc.alive() and self.proc.pid else {}

    def stop(self) -> list[str]:
        return stop_all([self.proc], [self.port])

    def kill(self) -> None:
        """SIGKILL to Gitea's process group (Gitea, the git processes it runs and their hooks), as when its
        pod is killed: nothing is answered or finished; its data stays as it was at that moment."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.proc.popen is not None
        self.proc.popen.wait(10)

    def restart(self) -> None:
        """Start Gitea again on the same data, port and configuration, once killed or stopped; wait until it answers."""
        assert not self.proc.alive(), "restart a Gitea that is stopped"
        self.proc = Proc(self.proc.name, self.proc.args, self.proc.log.parent, cwd=self.root)
        self._start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _start(self) -> None:
        t0 = time.monotonic()
        self.proc.start()

        # /api/healthz answers 200 once the database is migrated and the routes are up
        def ready() -> bool:
            return http_ok(f"{self.url}/api/healthz")

        # polled every 0.1 s (a cheap local GET), so started_in is a measurement, not the poll's back-off
        wait_until("Gitea's /api/healthz", ready, START_SECONDS, self.proc.check, interval=0.1, max_interval=0.1)
        self.started_in = time.monotonic() - t0


def start_gitea(root: Path, logs: Path) -> Gitea:
    """Start Gitea in ``root`` and wait (bounded) until its API answers."""
    root.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "app.ini"
    config.write_text(app_ini(root, port), encoding="utf-8")
    proc = Proc(
        "gitea", [str(gitea_binary()), "web", "--config", str(config), "--work-path", str(root)], logs, cwd=root
    )
    g = Gitea(root, port, proc, config)
    g._start()
    return g

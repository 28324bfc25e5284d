"""Gitea's start-up time and memory on this machine, from the testbed's build (tests/testbed/build.py).

Each round starts a fresh Gitea (new work folder, SQLite, as tests/testbed/forge.py
configures it) and measures: seconds from exec until /api/healthz answers
(a fresh database: the migrations run in that time), RSS of its process group
right after, RSS after seeding the lab (accounts, repository, branch rule),
pushing the first commit and cloning it back, and RSS after a restart on the
same data (no migrations). RSS is read from /proc (VmRSS).

    python tests/testbed/build.py --only gitea     # once
    python benchmarks/gitea_footprint.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from gitops_lab.adapters.forge.gitea import BranchRule  # noqa: E402
from gitops_lab.adapters.forge.seed import LabRepository, load_or_create_accounts  # noqa: E402
from helpers.gitutil import run_git  # noqa: E402
from testbed.forge import start_gitea  # noqa: E402
from testbed.processes import group_rss  # noqa: E402

MIB = 2**20


def one_round(tmp: Path) -> dict[str, float]:
    g = start_gitea(tmp / "gitea", tmp / "logs")
    out = {"start_s": g.started_in, "rss_idle_mib": group_rss(g.proc.pid) / MIB}
    try:
        acc = load_or_create_accounts(tmp / "forge.json", reviewers=("rita",))
        t0 = time.monotonic()
        g.seed_lab(acc, LabRepository("lab"))
        work = tmp / "work"
        work.mkdir()
        run_git("init", "-q", "-b", "main", cwd=work)
        (work / "README.md").write_text("lab\n")
        run_git("add", "README.md", cwd=work)
        run_git("commit", "-q", "-m", "first", cwd=work)
        url = f"http://{acc.learner.username}:{acc.learner.password}@127.0.0.1:{g.port}/{acc.learner.username}/lab.git"
        run_git("push", "-q", url, "HEAD:refs/heads/main", cwd=work)
        g.seed_lab(acc, LabRepository("lab", rule=BranchRule(push_files="overlays/dev/**")))
        out["seed_s"] = time.monotonic() - t0
        run_git("clone", "-q", url, str(tmp / "clone"), cwd=tmp)
        out["rss_after_seed_push_clone_mib"] = group_rss(g.proc.pid) / MIB
    finally:
        g.stop()
    g2 = start_gitea(tmp / "gitea", tmp / "logs")
    try:
        out["restart_s"] = g2.started_in
        out["rss_restarted_mib"] = group_rss(g2.proc.pid) / MIB
    finally:
        g2.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rounds = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="gitea-footprint-") as d:
            r = one_round(Path(d))
        rounds.append(r)
        print(json.dumps({"round": i + 1, **{k: round(v, 1) for k, v in r.items()}}), flush=True)
    print("load average:", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    for key in rounds[0]:
        values = sorted(r[key] for r in rounds)
        print(f"{key}: min {values[0]:.1f}, median {values[len(values) // 2]:.1f}, max {values[-1]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

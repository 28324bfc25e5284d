"""Push to Argo CD's refresh on the testbed: with Gitea's push webhook, and by polling alone.

Starts the testbed's cluster, Argo CD (with argocd-server, webhook.gogs.secret set by the product's
``accept_push_webhooks``) and Gitea; seeds two lab repositories, ``hooked`` (a push webhook to
argocd-server's /api/webhook) and ``polled`` (none), each tracked by an Application. Then measures
seconds from ``git push`` returning until the Application reports the pushed commit as its
``status.sync.revision`` (read every 0.2 s; nobody requests a refresh): ``--rounds`` pushes to
``hooked``, and one push to ``polled`` (Argo CD's reconciliation here: 120 s plus up to 60 s jitter).

    python benchmarks/argocd_webhook.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from gitops_lab.adapters.engines.argocd import ArgoCD  # noqa: E402
from gitops_lab.adapters.engines.base import EnvironmentTarget, RepoAccess  # noqa: E402
from gitops_lab.adapters.forge.seed import LabRepository, load_or_create_accounts  # noqa: E402
from gitops_lab.deadline import Deadline  # noqa: E402
from gitops_lab.kube.client import connect  # noqa: E402
from testbed.cluster import start_cluster  # noqa: E402
from testbed.engines import start_argocd  # noqa: E402
from testbed.forge import start_gitea  # noqa: E402

POLL_BOUND = 300.0  # above 120 s + 60 s jitter


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout.strip()


def _push(work: Path, url: str, n: int) -> str:
    d = work / "overlays" / "dev"
    d.mkdir(parents=True, exist_ok=True)
    (d / "kustomization.yaml").write_text("resources:\n- config.yaml\n")
    (d / "config.yaml").write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  n: '{n}'\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", f"change {n}")
    _git(work, "push", "-q", url, "HEAD:refs/heads/main")
    return _git(work, "rev-parse", "HEAD")


def _seconds_until(engine: ArgoCD, sha: str, bound: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < bound:
        if engine.status("dev").revision == sha:
            return round(time.monotonic() - t0, 1)
        time.sleep(0.2)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    tmp = Path(tempfile.mkdtemp(prefix="gitops-lab-bench-webhook-"))
    cluster = start_cluster(tmp)
    argocd = gitea = None
    try:
        argocd = start_argocd(cluster)
        gitea = start_gitea(tmp / "gitea", tmp / "logs")
        kube = connect(cluster.kubeconfig)
        accounts = load_or_create_accounts(tmp / "forge.json")
        ArgoCD(kube).accept_push_webhooks(accounts.webhook_secret)
        hook = f"{argocd.start_server()}{ArgoCD.push_webhook_path}"
        kube.core().create_namespace({"metadata": {"name": "bench-dev"}})
        owner, host = accounts.learner.username, gitea.url.removeprefix("http://")
        labs = {}
        for name in ("hooked", "polled"):
            gitea.seed_lab(accounts, LabRepository(name, webhook_url=hook if name == "hooked" else None))
            work = tmp / name
            work.mkdir()
            _git(work, "init", "-q", "-b", "main")
            _git(work, "config", "user.name", "b")
            _git(work, "config", "user.email", "b@example.invalid")
            url = f"http://{owner}:{accounts.learner.password}@{host}/{owner}/{name}.git"
            first = _push(work, url, 0)
            engine = ArgoCD(kube, tenant=name)
            login = accounts.engine
            access = RepoAccess(f"{gitea.url}/{owner}/{name}.git", "main", login.username, login.password)
            engine.register([EnvironmentTarget("dev", "bench-dev", "overlays/dev")], access)
            engine.wait_applied("dev", first, Deadline(180))
            labs[name] = (engine, work, url)
        engine, work, url = labs["hooked"]
        webhook = [_seconds_until(engine, _push(work, url, n), 60) for n in range(1, rounds + 1)]
        engine, work, url = labs["polled"]
        polled = _seconds_until(engine, _push(work, url, 1), POLL_BOUND)
        print(json.dumps({"webhook_push_to_revision_s": webhook, "polling_push_to_revision_s": polled}))
    finally:
        for part in (gitea, argocd, cluster):
            if part is not None:
                part.stop()


if __name__ == "__main__":
    main()

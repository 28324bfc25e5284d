"""The product against the testbed: real kube-apiserver, real Argo CD and Flux.

For each engine: up, up again (a no-op), promote dev->staging->prod, roll back
prod, status; after each step the Kubernetes API is asked what each namespace
runs. Then a promotion whose pods can never become Ready must end in a clear
timeout error naming the environment and the reason, not hang.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers.gitutil import remote_head
from helpers.served import LABEL, NAMESPACES, running


@pytest.fixture
def lab(engine_on_testbed):
    from kubernetes import client

    api = engine_on_testbed.cluster.api_client()
    yield engine_on_testbed, client.AppsV1Api(api)
    api.close()


def test_up_promote_rollback_status(lab, tmp_path_factory):
    on_testbed, apps = lab
    engine, url, cli = on_testbed.engine, on_testbed.url, on_testbed.cli
    first = on_testbed.up("--output", "json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["versions"] == {"dev": "v2", "staging": "v1", "prod": "v1"}
    assert summary["changed"]
    assert {env: running(apps, env) for env in NAMESPACES} == {
        "dev": ("v2", 1, 1),
        "staging": ("v1", 1, 1),
        "prod": ("v1", 2, 2),
    }

    again = on_testbed.up()
    assert again.exit_code == 0, again.output
    assert "was already up; nothing changed" in again.stdout

    promoted = cli("promote", "--from", "dev", "--to", "staging", "--timeout", "120")
    assert promoted.exit_code == 0, promoted.output
    assert running(apps, "staging") == ("v2", 1, 1)
    approved = cli("approve", "--env", "prod", "--version", "v2", "--by", "CI Approver <ci@example.com>")
    assert approved.exit_code == 0, approved.output
    promoted = cli("promote", "--to", "prod", "--timeout", "120")
    assert promoted.exit_code == 0, promoted.output
    assert running(apps, "prod") == ("v2", 2, 2)
    rolled = cli("rollback", "--env", "prod", "--timeout", "120")
    assert rolled.exit_code == 0, rolled.output
    assert running(apps, "prod") == ("v1", 2, 2)

    status = cli("status", "--output", "json")
    assert status.exit_code == 0, status.output
    rows = {row["environment"]: row for row in json.loads(status.stdout)}
    assert {env: (r["version"], r["ok"], r["engine"]) for env, r in rows.items()} == {
        "dev": ("v2", True, engine),
        "staging": ("v2", True, engine),
        "prod": ("v1", True, engine),
    }
    # prod applied the newest commit; the others applied a commit at which their
    # overlay is what it is now (an engine refreshes an untouched environment on its own schedule).
    clone = tmp_path_factory.mktemp("clone")
    subprocess.run(["git", "clone", "--quiet", url, str(clone)], check=True)
    assert rows["prod"]["commit"] == remote_head(url)
    for env, row in rows.items():
        overlay = f"overlays/{env}/kustomization.yaml"
        at_commit = subprocess.run(
            ["git", "-C", str(clone), "show", f"{row['commit']}:{overlay}"], check=True, capture_output=True, text=True
        ).stdout
        assert at_commit == (clone / overlay).read_text(), env

    # A hand edit: status names the drift (Flux heals only when asked or at its
    # interval; Argo CD's selfHeal may beat the status call), and sync heals it.
    apps.patch_namespaced_deployment(
        "model-server", "ml-prod", {"spec": {"template": {"metadata": {"labels": {LABEL: "v3"}}}}}
    )
    if engine == "flux":
        drifted = cli("status", "--output", "json")
        assert drifted.exit_code == 1
        prod = {row["environment"]: row for row in json.loads(drifted.stdout)}["prod"]
        assert (prod["version"], prod["git_version"], prod["ok"]) == ("v3", "v1", False)
        assert "drift: model version v3 live, v1 in Git" in prod["message"]
    healed = cli("sync", "--env", "prod", "--timeout", "60")
    assert healed.exit_code == 0, healed.output
    assert running(apps, "prod") == ("v1", 2, 2)
    assert cli("status").exit_code == 0

    # A rollout that cannot complete: no node accepts the new pods.
    from kubernetes import client

    core = client.CoreV1Api(apps.api_client)
    nodes = [n.metadata.name for n in core.list_node().items]
    for node in nodes:
        core.patch_node(node, {"spec": {"unschedulable": True}})
    try:
        # v3 would be stopped by the gates; skip them (recorded) to reach the rollout.
        stuck = cli(
            "promote",
            "--to",
            "staging",
            "--version",
            "v3",
            "--skip-gate",
            "data-quality",
            "--skip-gate",
            "model-eval",
            "--timeout",
            "20",
        )
    finally:
        for node in nodes:
            core.patch_node(node, {"spec": {"unschedulable": False}})
    assert stuck.exit_code == 3, stuck.output
    last = stuck.stderr.strip().splitlines()[-1]
    assert last.startswith("error: staging: timed out after 20s waiting for")
    assert "last seen:" in last  # what was last seen: the engine's view or the rollout's
    assert "unschedulable" in last or "FailedScheduling" in last  # the reason, from the events

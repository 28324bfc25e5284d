"""Labs walked as a learner walks them, off the path too, on the testbed, for Argo CD and Flux (issue 14).

- promotion: a stale approval (approved, then the lab reset) and one recorded
  after the promotion (prod moved by hand, then approved) give the same
  verdict in the gate and in the check, and the check's advice leads back;
- rollback: a plain `git revert` of the promotion is a rollback, for the check
  and for `gitops-lab rollback`; validation-gates: a hand edit back to v2 is;
- drift: `status` names replica drift with the fix, and starting the finished
  lab again runs its setup again;
- gitops-basics: reading the log is checked, and the step that asks the model
  passes, saying why, where pods do not run (the testbed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from helpers.gitutil import git

REVIEWER = "Rita Reviewer <rita@example.com>"


def working_copy() -> Path:
    from gitops_lab.state import load_state

    repo_path = load_state().repo_path
    assert repo_path is not None, "the lab's state names no working copy"
    return Path(repo_path)


def hand_edit(wc: Path, env: str, version: str, message: str) -> None:
    from gitops_lab.adapters.repo import RepoLayout

    git(wc, "pull", "--quiet", "--ff-only")
    RepoLayout(wc).set_model_version(env, version)
    git(wc, "commit", "-qam", message)
    git(wc, "push", "-q", "origin", "main")


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def check(cli, expect_pass: bool):
    result = cli("lab", "check", "--timeout", "120")
    assert result.exit_code == (0 if expect_pass else 1), result.output
    return result.stdout


@pytest.fixture
def lab_up(engine_on_testbed):
    ok(engine_on_testbed.up())
    return engine_on_testbed


def test_promotion_lab_one_approval_rule_and_a_way_back(lab_up):
    cli = lab_up.cli
    ok(cli("lab", "start", "promotion", "--timeout", "120"))
    ok(cli("lab", "solve", "--timeout", "120"))  # v2 in staging; now at the prod step

    # Approve, then reset the lab: prod never changed version, so gate and check both accept the approval.
    ok(cli("approve", "--env", "prod", "--version", "v2", "--by", REVIEWER))
    ok(cli("lab", "reset", "--timeout", "120"))
    ok(cli("promote", "--to", "staging", "--timeout", "120"))
    ok(cli("history", "--env", "staging"))
    check(cli, True)
    ok(cli("gate", "run", "--to", "prod"))
    ok(cli("promote", "--to", "prod", "--timeout", "120"))
    assert "Lab complete" in check(cli, True)

    # An approval after the promotion, then a restart that moves prod back: the approval is void.
    ok(cli("approve", "--env", "prod", "--version", "v2", "--by", "Bob Reviewer <bob@example.com>"))
    restarted = ok(cli("lab", "start", "promotion", "--timeout", "120"))
    assert "Lab promotion is done: starting it over." in restarted.stderr
    ok(cli("promote", "--to", "staging", "--timeout", "120"))
    ok(cli("history", "--env", "staging"))
    check(cli, True)
    refused = cli("promote", "--to", "prod", "--timeout", "120")
    assert refused.exit_code == 4 and "since prod's last change of version" in refused.stderr

    # prod moved by hand and approved afterwards: the check says how to get back, and that works.
    wc = working_copy()
    hand_edit(wc, "prod", "v2", "Put v2 in prod by hand")
    ok(cli("sync", "--env", "prod", "--timeout", "120"))
    ok(cli("approve", "--env", "prod", "--version", "v2", "--by", REVIEWER))
    stuck = check(cli, False)
    assert "not by `gitops-lab promote`, so no gate checked an approval" in stuck
    assert "`gitops-lab rollback --env prod`, then `gitops-lab approve --env prod --version v2" in stuck
    ok(cli("rollback", "--env", "prod", "--timeout", "120"))
    ok(cli("approve", "--env", "prod", "--version", "v2", "--by", REVIEWER))
    ok(cli("promote", "--to", "prod", "--timeout", "120"))
    assert "Lab complete" in check(cli, True)


def test_plain_revert_and_hand_edit_are_rollbacks(lab_up):
    cli = lab_up.cli
    wc = working_copy()
    ok(cli("lab", "start", "rollback", "--timeout", "120"))
    ok(cli("history", "--env", "prod"))
    git(wc, "pull", "--quiet", "--ff-only")
    promotion = git(wc, "log", "-1", "--format=%H", "--grep=^Promote v2 to prod")
    git(wc, "revert", "--no-edit", promotion)
    git(wc, "push", "-q", "origin", "main")
    ok(cli("sync", "--env", "prod", "--timeout", "120"))
    check(cli, True)
    refused = cli("rollback", "--env", "prod")
    assert refused.exit_code == 2 and "already went back to v1" in refused.stderr
    hand_edit(wc, "staging", "v1", "Take v2 out of staging")
    ok(cli("sync", "--env", "staging", "--timeout", "120"))
    ok(cli("history", "--env", "staging"))
    history = json.loads(ok(cli("history", "--env", "prod", "--output", "json")).stdout)
    assert [(e["action"], e["version"]) for e in history[:2]] == [("manual", "v1"), ("promote", "v2")]
    assert "Lab complete" in check(cli, True)

    ok(cli("lab", "start", "validation-gates", "--timeout", "120"))
    assert cli("gate", "run", "--from", "dev", "--to", "staging", "--version", "v3").exit_code == 4
    assert cli("promote", "--from", "dev", "--to", "staging", "--version", "v3").exit_code == 4
    hand_edit(wc, "dev", "v2", "Back to v2 in dev")
    ok(cli("sync", "--env", "dev", "--timeout", "120"))
    check(cli, True)


def pause_healing(lab_up, env: str, paused: bool) -> None:
    """Hold the engine back from healing env, so status can be asked while drift lasts."""
    from gitops_lab.adapters.engines.base import registered_name
    from gitops_lab.state import load_state
    from gitops_lab.workflows.environment import open_environment

    engine = open_environment(load_state()).engine
    if lab_up.engine == "argocd":
        engine.applier.merge_patch(
            "argoproj.io/v1alpha1",
            "Application",
            registered_name(env),
            {"spec": {"syncPolicy": {"automated": {"selfHeal": not paused}}}},
            engine.namespace,
        )
    else:
        engine.applier.merge_patch(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            registered_name(env),
            {"spec": {"suspend": paused}},
            engine.namespace,
        )


def test_status_names_replica_drift_and_a_finished_lab_starts_over(lab_up):
    from kubernetes import client

    cli = lab_up.cli
    apps = client.AppsV1Api(lab_up.cluster.api_client())
    from testbed.processes import wait_until

    pause_healing(lab_up, "prod", True)
    try:

        def scaled_by_hand():
            # A reconcile already under way when healing was paused may still put Git's 2 back: scale again then.
            apps.patch_namespaced_deployment("model-server", "ml-prod", {"spec": {"replicas": 4}})
            result = cli("status", "--output", "json")
            row = {r["environment"]: r for r in json.loads(result.stdout)}["prod"]
            return (result, row) if row["replicas_desired"] == 4 else None

        drifted, prod = wait_until("prod to stay hand-scaled while healing is paused", scaled_by_hand, timeout=90)
        assert drifted.exit_code == 1, drifted.output
        assert prod["drift"] == ["4 replicas live, 2 in Git"] and not prod["ok"]
        assert "`gitops-lab sync --env prod` puts Git's state back" in prod["message"]
    finally:
        pause_healing(lab_up, "prod", False)
    ok(cli("sync", "--env", "prod", "--timeout", "120"))
    # Resuming healing makes Flux reconcile once more, maybe just after the sync returned: status may read
    # that run ("Reconciliation in progress", exit 1) before it ends. It must come back to ok, within a bound.
    deadline = time.monotonic() + 60
    while (status := cli("status")).exit_code != 0 and time.monotonic() < deadline:
        time.sleep(1)
    ok(status)

    ok(cli("lab", "start", "drift", "--timeout", "120"))
    ok(cli("lab", "solve", "decide-on-input-drift", "--timeout", "120"))
    before = apps.read_namespaced_deployment("model-server", "ml-prod").metadata.generation
    restarted = ok(cli("lab", "start", "drift", "--timeout", "120", "--output", "json"))
    assert "Lab drift is done: starting it over." in restarted.stderr
    assert json.loads(restarted.stdout)["restarted"] is True
    # The setup ran again: prod was hand-scaled (the reset alone moves it once, 3 -> 2 replicas).
    after = apps.read_namespaced_deployment("model-server", "ml-prod").metadata.generation
    assert after >= before + 2
    check(cli, False)


def test_fix_policy_refuses_a_made_up_digest_and_the_hint_leads_back(lab_up):
    cli = lab_up.cli
    wc = working_copy()
    ok(cli("lab", "start", "approvals-policy", "--timeout", "120"))
    ok(cli("lab", "solve", "--timeout", "120"))  # now at fix-policy: Tom's commit unpinned the image
    git(wc, "pull", "--quiet", "--ff-only")
    toms = git(wc, "log", "-1", "--format=%H", "--author=Tom Teammate")
    deployment = wc / "base" / "deployment.yaml"
    text = deployment.read_text()
    unpinned = next(line for line in text.splitlines() if line.strip().startswith("image: "))
    deployment.write_text(text.replace(unpinned, unpinned + "@sha256:" + "0" * 64))
    git(wc, "commit", "-qam", "Pin the image by digest")
    git(wc, "push", "-q", "origin", "main")
    ok(cli("sync", "--timeout", "120"))
    ok(cli("gate", "run", "--from", "staging", "--to", "prod", "--version", "v2", "--gate", "policy"))
    made_up = check(cli, False)
    assert "is pinned to sha256:000000000000..., a digest gitops-lab does not ship and no pod runs" in made_up
    assert "Put back the digest Tom's commit removed" in made_up
    git(wc, "revert", "--no-edit", "HEAD")
    git(wc, "revert", "--no-edit", toms)
    git(wc, "push", "-q", "origin", "main")
    ok(cli("sync", "--timeout", "120"))
    assert "Lab complete" in check(cli, True)


def test_gitops_basics_checks_the_log_was_read_and_passes_the_model_step_where_pods_do_not_run(lab_up):
    cli = lab_up.cli
    wc = working_copy()
    ok(cli("lab", "start", "gitops-basics", "--timeout", "120"))
    ok(cli("lab", "solve", "--timeout", "120"))  # scale-dev; now at undo-with-git
    git(wc, "pull", "--quiet", "--ff-only")
    git(wc, "revert", "--no-edit", "HEAD")
    git(wc, "push", "-q", "origin", "main")
    ok(cli("sync", "--env", "dev", "--timeout", "120"))
    not_read = check(cli, False)
    assert "this step asks you to look first: run `gitops-lab history --env dev`" in not_read
    ok(cli("history", "--env", "dev"))
    check(cli, True)  # undo-with-git passes; the model step begins
    skipped = check(cli, True)
    assert "skipped: needs model-server pods that run and answer (a kind cluster)" in skipped

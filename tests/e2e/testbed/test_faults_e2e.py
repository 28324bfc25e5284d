"""Faults on the testbed, for Argo CD and for Flux: a wait that asks again, a
controller killed mid-promotion, kube-apiserver restarted mid-wait, and many
promotions and rollbacks in a row (the flake of issue 10: an engine that
handled the one reconcile request before the commit was visible).

Each test asserts: the command ends (within its own --timeout), the cluster
serves what the remote says, and the local copy agrees with the remote.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path


from helpers.gitutil import git, remote_head
from helpers.served import NAMESPACES, running


def _up(on):
    result = on.up()
    assert result.exit_code == 0, result.output
    from gitops_lab.state import load_state

    return load_state()


def _slow_engine_polls(state) -> None:
    """Make the engine's own polling slower than the tests' deadlines, so only requests make it look now.

    Argo CD on the testbed already polls every 120 s. Flux's objects get a 1 h
    interval; the reconcile that the change itself triggers is waited out first.
    """
    if state.engine != "flux":
        return
    from gitops_lab.adapters.engines.base import registered_name
    from gitops_lab.adapters.engines.flux import KUSTOMIZE_API, SOURCE_API
    from gitops_lab.deadline import Deadline
    from gitops_lab.kube.wait import wait_for
    from gitops_lab.workflows.environment import open_environment

    applier = open_environment(state).engine.applier
    for env in NAMESPACES:
        for api, kind in ((SOURCE_API, "GitRepository"), (KUSTOMIZE_API, "Kustomization")):
            applier.merge_patch(api, kind, registered_name(env), {"spec": {"interval": "1h"}}, "flux-system")
            wait_for(
                applier,
                api,
                kind,
                registered_name(env),
                "flux-system",
                lambda o: (
                    o is not None and o["status"].get("observedGeneration") == o["metadata"]["generation"],
                    "reconciling",
                ),
                Deadline(60),
                f"{kind} {env} to take the 1h interval",
            )


def test_a_wait_asks_again_while_the_engine_reports_an_older_commit(engine_on_testbed):
    from gitops_lab.adapters.repo import RepoLayout
    from gitops_lab.deadline import Deadline
    from gitops_lab.workflows.environment import open_environment

    state = _up(engine_on_testbed)
    _slow_engine_polls(state)
    wc = Path(state.repo_path)
    RepoLayout(wc).set_model_version("staging", "v2")
    git(wc, "commit", "--quiet", "-am", "Promote v2 to staging by hand")
    git(wc, "push", "--quiet", "origin", "main")
    commit = git(wc, "rev-parse", "HEAD")
    engine = open_environment(state).engine
    # Nobody requests a reconcile: only the wait's own asking makes the engine look before its next poll.
    status = engine.wait_applied("staging", commit, Deadline(45))
    assert status.revision == commit and status.healthy


def _when_pushed(url: str, before: str, then) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``then()`` in the background as soon as the remote's main moves from ``before``; what it raised."""
    failures: list[BaseException] = []

    def watch() -> None:
        try:
            limit = time.monotonic() + 120
            while remote_head(url) == before:
                assert time.monotonic() < limit, "the promotion never pushed"
                time.sleep(0.1)
            then()
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, failures


def _promote_while(on, fault) -> None:
    """Promote dev to staging while ``fault()`` runs, from the moment the commit is pushed; it must end served."""
    injector, failures = _when_pushed(on.url, remote_head(on.url), fault)
    result = on.cli("promote", "--from", "dev", "--to", "staging", "--timeout", "180")
    injector.join(150)
    assert not failures, failures
    assert result.exit_code == 0, result.output
    assert running(on.cluster_apps(), "staging")[0] == "v2"


CONTROLLERS = {"argocd": "argocd-application-controller", "flux": "kustomize-controller"}


def test_a_controller_killed_mid_promotion_and_restarted_still_ends_in_a_served_promotion(engine_on_testbed, request):
    on = engine_on_testbed
    _up(on)
    fixture = request.getfixturevalue(f"testbed_{on.engine}")
    controller = CONTROLLERS[on.engine]

    def kill_and_restart() -> None:
        os.killpg(fixture.procs[controller].pid, signal.SIGKILL)
        fixture.restart(controller)

    _promote_while(on, kill_and_restart)


def test_kube_apiserver_restarted_mid_wait_is_waited_for(engine_on_testbed):
    from testbed.processes import http_ok, wait_until

    on = engine_on_testbed
    _up(on)
    cluster = on.cluster
    apiserver = cluster.procs["kube-apiserver"]

    def restart_apiserver() -> None:
        time.sleep(0.5)  # let the wait start following its watch
        apiserver.stop()
        apiserver.start()
        ctx = cluster._ssl_ctx()
        wait_until("kube-apiserver /readyz after restart", lambda: http_ok(f"{cluster.server}/readyz", ctx), 120)

    _promote_while(on, restart_apiserver)


def test_many_promotions_and_rollbacks_in_a_row_each_end_served(engine_on_testbed):
    on = engine_on_testbed
    state = _up(on)
    apps = on.cluster_apps()
    for _ in range(4):
        for args, version in (
            (["promote", "--from", "dev", "--to", "staging"], "v2"),
            (["rollback", "--env", "staging", "--to", "v1"], "v1"),
        ):
            result = on.cli(*args, "--timeout", "60")
            assert result.exit_code == 0, result.output
            assert running(apps, "staging")[0] == version
            assert git(Path(state.repo_path), "rev-parse", "HEAD") == remote_head(on.url)

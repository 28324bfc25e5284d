"""The release automation as a workload in the cluster (`python -m gitops_lab.incluster`).

The same release as `gitops-lab release --watch` (``release.watch_once``: promote,
verify, revert with the evidence in trailers), run by a pod instead of a
terminal. Each pass fetches the lab repository; a push that changed dev's
version starts a release under the Lease (``release_lease``) instead of the
host's lock file. Every fact is in Git (``Release-Trigger`` trailers), plus what
a release stopped mid-way was doing (the Lease's annotation), so a restarted pod
resumes: it starts after the last change the automation handled
(``release.watch_start``) and finishes an interrupted release first.

After each pass the pod writes what it saw and did to the ConfigMap
``release-automation-status`` in its namespace; `gitops-lab release status`
reads it with the Lease and the pod (``agent_status``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gitops_lab.adapters.engines import ENGINES, engine_for
from gitops_lab.adapters.repo.git import Git, GitAuth, authenticated
from gitops_lab.adapters.repo.pushed import fetch_pushed
from gitops_lab.adapters.repo.seed import init_working_copy
from gitops_lab.errors import GitOpsLabError, ReleaseInProgress, UsageError
from gitops_lab.kube.apply import Applier
from gitops_lab.kube.client import Kube
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState
from gitops_lab.workflows.environment import LabEnvironment
from gitops_lab.workflows.release import Deployment, WatchPass, cluster_deployment, watch_once, watch_start
from gitops_lab.workflows.release_lease import LEASE, KubeLeaseStore, acting_of, claim_of, lease_held

NAMESPACE = "gitops-lab-release"
STATUS = "release-automation-status"
IDENTITY = "release-automation"
COMMAND = "the in-cluster release automation"
#: The passes the status ConfigMap keeps (those that released something or failed), newest first.
KEPT_PASSES = 10
AUTHOR = {"user.name": "gitops-lab release automation", "user.email": "release-automation@gitops-lab.local"}


@dataclass(frozen=True)
class AgentConfig:
    """What the Deployment's environment tells the automation (manifests/release-automation/)."""

    repo_url: str
    engine: str
    namespace: str
    auth: GitAuth | None
    interval: float = 5.0
    timeout: float = 900.0
    workdir: Path = Path("/work")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> AgentConfig:
        missing = [v for v in ("GITOPS_LAB_REPO_URL", "GITOPS_LAB_ENGINE") if not environ.get(v)]
        if missing:
            raise UsageError(
                f"the release automation needs {' and '.join('$' + v for v in missing)}",
                fix="set them in its Deployment (automation/release-automation.yaml in the lab repository)",
            )
        engine = environ["GITOPS_LAB_ENGINE"]
        if engine not in ENGINES:
            raise UsageError(
                f"unknown engine {engine!r} in $GITOPS_LAB_ENGINE", fix=f"use one of: {', '.join(ENGINES)}"
            )
        try:
            interval = float(environ.get("GITOPS_LAB_INTERVAL") or 5)
            timeout = float(environ.get("GITOPS_LAB_RELEASE_TIMEOUT") or 900)
        except ValueError as exc:
            raise UsageError(
                f"$GITOPS_LAB_INTERVAL and $GITOPS_LAB_RELEASE_TIMEOUT are seconds: {exc}", fix="give numbers"
            ) from exc
        return cls(
            repo_url=environ["GITOPS_LAB_REPO_URL"],
            engine=engine,
            namespace=environ.get("GITOPS_LAB_NAMESPACE") or NAMESPACE,
            auth=GitAuth.from_environ(environ),
            interval=interval,
            timeout=timeout,
            workdir=Path(environ.get("GITOPS_LAB_WORKDIR") or "/work"),
        )


def open_lab(config: AgentConfig, kube: Kube, reporter: Reporter) -> LabEnvironment:
    """A working copy of the lab repository (cloned afresh: the facts are in Git) and the engine."""
    path = config.workdir / "repo"
    with authenticated(config.auth):
        seeded = init_working_copy(path, config.repo_url)
    git = Git(seeded.path)
    for key, value in AUTHOR.items():
        git.run("config", key, value)
    reporter.info(f"working copy of {config.repo_url} at {seeded.path} ({seeded.action})")
    state = EnvironmentState(name="in-cluster", repo_path=str(seeded.path), engine=config.engine)
    return LabEnvironment(state, kube, engine_for(config.engine, kube), seeded.path)


def pass_record(done: WatchPass | None, error: GitOpsLabError | None = None) -> dict[str, Any]:
    """One pass as the status ConfigMap keeps it."""
    record: dict[str, Any] = {"time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if done is not None:
        record.update(head=done.head, trigger=done.trigger)
        error = error or done.error
        if done.result is not None:
            record["result"] = done.result.to_dict()
    if error is not None:
        record["error"] = error.one_line()
    return record


def write_status(kube: Kube, namespace: str, record: dict[str, Any], state: str) -> None:
    """Record ``state`` (watching, releasing, waiting) and, when it acted or failed, the pass, newest first."""
    applier = Applier(kube, field_manager=IDENTITY)
    current = applier.get("v1", "ConfigMap", STATUS, namespace) or {}
    data = current.get("data") or {}
    passes = json.loads(data.get("passes") or "[]")
    if record.get("trigger") or record.get("error"):
        passes = [record, *passes][:KEPT_PASSES]
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": STATUS, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "gitops-lab"}},
        "data": {
            "state": state,
            "pod": socket.gethostname(),
            "last-pass": json.dumps(record),
            "passes": json.dumps(passes),
        },
    }
    applier.apply(body)


def run_agent(config: AgentConfig, kube: Kube, reporter: Reporter, stop: threading.Event) -> None:
    """Pass after pass until ``stop`` is set: each new head of the remote (or an interrupted release) gets one."""
    lab = open_lab(config, kube, reporter)
    deployment = cluster_deployment(lab)
    store = KubeLeaseStore(kube, config.namespace)
    with authenticated(config.auth):
        since = watch_start(lab.repo, None)
    reporter.info(
        f"watching {config.repo_url} every {config.interval:g}s for pushes that change dev's version"
        + (f" (after {since[:7]})" if since else "")
    )
    last: str | None = None
    while not stop.is_set():
        try:
            with authenticated(config.auth):
                last = one_pass(config, kube, lab, deployment, store, since, last, reporter)
        except GitOpsLabError as exc:  # the cluster or Git unreachable: said in the status, tried again
            reporter.warn(exc.one_line())
            _try_write_status(kube, config.namespace, pass_record(None, exc), "failing")
            last = None
        stop.wait(config.interval)


def one_pass(
    config: AgentConfig,
    kube: Kube,
    lab: LabEnvironment,
    deployment: Deployment,
    store: KubeLeaseStore,
    since: str | None,
    last: str | None,
    reporter: Reporter,
) -> str | None:
    """One look at the remote: a pass when its head moved (or a release is unfinished); the head it saw."""
    git = Git(lab.repo)
    head = git.out("rev-parse", fetch_pushed(git))
    unfinished = acting_of(store.get()) is not None
    if head == last and not unfinished:
        return last
    try:
        with lease_held(store, IDENTITY, COMMAND, reporter.warn) as journal:
            _try_write_status(kube, config.namespace, {"head": head}, "releasing")
            done = watch_once(reporter, lab.repo, deployment, config.timeout, since, journal)
    except ReleaseInProgress as busy:  # a release typed on the host holds the Lease: the next pass looks again
        _try_write_status(kube, config.namespace, pass_record(None, busy), "waiting")
        return None
    record = pass_record(done)
    if done.error is not None:
        reporter.warn(f"release of {(done.trigger or '')[:7]}: {done.error.one_line()}")
    elif done.result is not None:
        stages = ", ".join(f"{s.environment} {s.outcome}" for s in done.result.stages)
        reporter.info(
            f"release of {done.result.version} (trigger {done.trigger[:7] if done.trigger else '?'}): {stages}"
        )
    _try_write_status(kube, config.namespace, record, "watching")
    return done.head


def _try_write_status(kube: Kube, namespace: str, record: dict[str, Any], state: str) -> None:
    try:
        write_status(kube, namespace, record, state)
    except (GitOpsLabError, OSError):
        pass  # the status is a report: the release's facts are in Git, and the next pass writes it again


# --------------------------------------------------------------------------- #
# `gitops-lab release status`: what the in-cluster automation is doing and did
# --------------------------------------------------------------------------- #
def agent_status(kube: Kube, namespace: str = NAMESPACE) -> dict[str, Any] | None:
    """The automation's pod(s), its Lease and its status ConfigMap; None when it is not installed."""
    applier = Applier(kube)
    if applier.get("v1", "Namespace", namespace) is None:
        return None
    pods = applier.list("v1", "Pod", namespace, "app.kubernetes.io/name=release-automation")
    lease = KubeLeaseStore(kube, namespace).get()
    status = applier.get("v1", "ConfigMap", STATUS, namespace) or {}
    data = status.get("data") or {}
    acting = acting_of(lease)
    return {
        "namespace": namespace,
        "pods": [_pod_summary(p) for p in pods],
        "lease": {
            "name": LEASE,
            "holder": claim_of(lease),
            "renewed": ((lease or {}).get("spec") or {}).get("renewTime"),
            "acting": None if acting is None else asdict(acting),
        },
        "state": data.get("state"),
        "last_pass": json.loads(data["last-pass"]) if data.get("last-pass") else None,
        "passes": json.loads(data.get("passes") or "[]"),
    }


def _pod_summary(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return {
        "name": pod["metadata"]["name"],
        "phase": (pod.get("status") or {}).get("phase"),
        "ready": bool(statuses) and all(s.get("ready") for s in statuses),
        "restarts": sum(s.get("restartCount", 0) for s in statuses),
        "image": next((s.get("image") for s in statuses), None),
    }


def installed(kube: Kube, namespace: str = NAMESPACE) -> bool:
    """Whether `up --release-automation` set the automation up on this cluster (its namespace exists)."""
    return Applier(kube).get("v1", "Namespace", namespace) is not None


@contextmanager
def host_claim(kube: Kube | None, command: str, reporter: Reporter) -> Iterator[None]:
    """A release typed on the host holds the automation's Lease too, when the automation is installed:
    one release at a time across the host and the cluster (ReleaseInProgress names the pod's release)."""
    if kube is None or not installed(kube):
        yield
        return
    identity = f"{command} on {socket.gethostname()} (pid {os.getpid()})"
    with lease_held(KubeLeaseStore(kube, NAMESPACE), identity, command, reporter.warn):
        yield

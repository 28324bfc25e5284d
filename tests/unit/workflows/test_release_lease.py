"""The in-cluster automation's lock: a Lease (workflows/release_lease.py), on an in-memory Lease store
that checks resourceVersion as the API server does; and a pass of the automation under it, on real Git
remotes and model-server processes (tests/helpers/localengine.py)."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from helpers.gitutil import git
from helpers.localengine import learner_sets_dev
from helpers.renderer import needs_kustomize

from gitops_lab.errors import ReleaseInProgress, VerificationFailed
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.release import watch_once
from gitops_lab.workflows.release_lease import (
    ACTING,
    LeaseConflict,
    acting_of,
    claim_of,
    lease_held,
)
from gitops_lab.workflows.release_lock import Acting


class MemoryLeaseStore:
    """One Lease, as the API server keeps it: a write naming an old resourceVersion is a conflict."""

    def __init__(self) -> None:
        self.lease: dict | None = None
        self.version = 0

    def get(self) -> dict | None:
        return copy.deepcopy(self.lease)

    def put(self, body: dict) -> dict:
        given = body["metadata"].get("resourceVersion")
        current = self.lease["metadata"]["resourceVersion"] if self.lease else None
        if given != current:
            raise LeaseConflict(f"resourceVersion {given} is not {current}")
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


def test_a_second_holder_is_refused_and_told_who_acts_and_on_what():
    store = MemoryLeaseStore()
    with lease_held(store, "release-automation", "in-cluster") as journal:
        journal.acting("a" * 40, "v5", "verifying prod")
        with pytest.raises(ReleaseInProgress) as refused:
            with lease_held(store, "gitops-lab release on laptop", "gitops-lab release"):
                pass
    assert "release-automation holds the Lease release-automation" in refused.value.message
    assert "the release of v5 (trigger aaaaaaa), while verifying prod" in refused.value.message
    assert claim_of(store.get()) is None  # let go at the end of the block


def test_a_restarted_automation_takes_its_own_claim_over_and_resumes_what_it_was_doing():
    store = MemoryLeaseStore()
    warnings: list[str] = []
    stopped = lease_held(store, "release-automation", "in-cluster")
    journal = stopped.__enter__()
    journal.acting("b" * 40, "v4", "rolling dev back after its verification failed")
    # The pod is killed here: no let-go. Its successor has the same identity.
    with lease_held(store, "release-automation", "in-cluster", warnings.append) as successor:
        assert successor.interrupted == Acting("b" * 40, "v4", "rolling dev back after its verification failed")
        successor.finished()
    assert warnings and "never let go" in warnings[0]
    assert acting_of(store.get()) is None


def test_someone_elses_expired_claim_is_taken_over_but_a_live_one_is_not():
    store = MemoryLeaseStore()
    with lease_held(store, "gitops-lab release on laptop", "gitops-lab release") as journal:
        journal.acting("c" * 40, "v2", "verifying staging")
        lease = store.get()
    lease["spec"]["holderIdentity"] = "gitops-lab release on laptop"  # it died holding it
    lease["spec"]["renewTime"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    store.lease = lease
    with pytest.raises(ReleaseInProgress):
        with lease_held(store, "release-automation", "in-cluster"):
            pass
    store.lease["spec"]["renewTime"] = "2020-01-01T00:00:00.000000Z"
    with lease_held(store, "release-automation", "in-cluster") as taken:
        assert taken.interrupted is not None and taken.interrupted.version == "v2"


def test_the_step_is_recorded_on_the_lease_while_the_release_runs():
    store = MemoryLeaseStore()
    with lease_held(store, "release-automation", "in-cluster") as journal:
        journal.acting("d" * 40, "v5", "releasing to prod")
        assert '"step": "releasing to prod"' in store.get()["metadata"]["annotations"][ACTING]
        assert claim_of(store.get()) == "release-automation"


@needs_kustomize
def test_a_pass_under_the_lease_reverts_a_bad_push_and_leaves_nothing_to_resume(lab, local_engine, tmp_path):
    wc, remote = lab
    clone = tmp_path / "learner"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "config", "user.name", "Lee Learner")
    git(clone, "config", "user.email", "lee@example.com")
    started = git(remote, "rev-parse", "main")
    learner_sets_dev(clone, "v4")
    store = MemoryLeaseStore()
    with lease_held(store, "release-automation", "in-cluster") as journal:
        done = watch_once(Reporter(), wc, local_engine.deployment(), 300, started, journal)
    assert isinstance(done.error, VerificationFailed)
    assert "Rollback-Reason: verification failed: accuracy" in git(remote, "log", "-1", "--format=%B", "main")
    assert acting_of(store.get()) is None and claim_of(store.get()) is None

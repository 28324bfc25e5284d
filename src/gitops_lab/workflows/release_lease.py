"""One release at a time, in the cluster: a coordination.k8s.io Lease the in-cluster automation holds.

The host's lock (``release_lock.py``) is a file on the learner's machine, which
a pod cannot see. In the cluster the lock is the Lease ``release-automation``
in the automation's namespace:

- ``spec.holderIdentity`` names who acts now (empty between releases), and
  ``spec.renewTime`` + ``leaseDurationSeconds`` say until when the claim holds
  if its holder dies without letting go;
- the annotation ``gitops-lab.io/acting`` records what the holder is doing (the
  trigger, the version, the step), and stays after a holder stopped mid-way, so
  the next holder finishes that release (``release.resume``), as with the file.

A second holder refuses while the claim holds and names the first. The
automation's own identity is the same across restarts of its pod (one replica,
``Recreate``), so a restarted pod takes its own claim over at once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, Protocol

from gitops_lab.errors import ClusterError, ReleaseInProgress
from gitops_lab.kube import rest
from gitops_lab.kube.client import Kube
from gitops_lab.workflows.release_lock import Acting

LEASE = "release-automation"
ACTING = "gitops-lab.io/acting"
COMMAND = "gitops-lab.io/command"
#: How long a claim holds after its last renewal; every step of a release renews it.
DURATION_SECONDS = 900


class LeaseConflict(Exception):
    """Someone else wrote the Lease between our read and our write."""


class LeaseStore(Protocol):
    def get(self) -> dict[str, Any] | None: ...

    def put(self, body: dict[str, Any]) -> dict[str, Any]: ...


class KubeLeaseStore:
    """The Lease ``name`` in ``namespace``: read, then created or replaced (resourceVersion checked)."""

    def __init__(self, kube: Kube, namespace: str, name: str = LEASE):
        self.kube, self.namespace, self.name = kube, namespace, name
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    def get(self) -> dict[str, Any] | None:
        try:
            return rest.request(self.kube.api, "GET", f"{self.collection}/{self.name}")
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise _lease_error(exc, f"read the Lease {self.namespace}/{self.name}") from exc

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        created = not body["metadata"].get("resourceVersion")
        method, path = ("POST", self.collection) if created else ("PUT", f"{self.collection}/{self.name}")
        try:
            return rest.request(self.kube.api, method, path, body)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                raise LeaseConflict(str(exc)) from exc
            raise _lease_error(exc, f"write the Lease {self.namespace}/{self.name}") from exc


def _lease_error(exc: BaseException, what: str) -> ClusterError:
    if isinstance(exc, ClusterError):
        return exc
    return ClusterError(
        f"cannot {what}: {getattr(exc, 'reason', None) or exc}",
        fix="check the automation's Role (`kubectl -n gitops-lab-release get role release-automation -o yaml`)",
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str | None) -> dt.datetime | None:
    if not stamp:
        return None
    return dt.datetime.strptime(stamp.replace("Z", "").split(".")[0], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=dt.timezone.utc
    )


def acting_of(lease: dict[str, Any] | None) -> Acting | None:
    """What the Lease says its (last) holder was doing, else None."""
    text = ((lease or {}).get("metadata", {}).get("annotations") or {}).get(ACTING)
    if not text:
        return None
    try:
        return Acting(**json.loads(text))
    except (TypeError, ValueError):
        return None  # damaged: nothing to resume from it


def claim_of(lease: dict[str, Any] | None, now: dt.datetime | None = None) -> str | None:
    """Who holds the Lease now (its holder, while its claim has not expired), else None."""
    spec = (lease or {}).get("spec") or {}
    holder = spec.get("holderIdentity")
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    if not holder or renewed is None:
        return None
    expires = renewed + dt.timedelta(seconds=int(spec.get("leaseDurationSeconds") or DURATION_SECONDS))
    return holder if (now or _now()) < expires else None


class LeaseJournal:
    """The Lease, held: records each step of the release (a ``release_lock.Journal``)."""

    def __init__(self, store: LeaseStore, lease: dict[str, Any], interrupted: Acting | None):
        self.store, self.lease = store, lease
        #: What a previous holder left unfinished (to be resumed by this one), else None.
        self.interrupted = interrupted
        self.current: Acting | None = interrupted

    def acting(self, trigger: str, version: str, step: str) -> None:
        self.current = Acting(trigger, version, step)
        self._write(holding=True)

    def finished(self) -> None:
        self.current = None
        self.interrupted = None
        self._write(holding=True)

    def let_go(self) -> None:
        try:
            self._write(holding=False)
        except LeaseConflict:
            pass  # someone took it over meanwhile (our claim had expired): it is theirs now

    def _write(self, holding: bool) -> None:
        body = json.loads(json.dumps(self.lease))
        annotations = body["metadata"].setdefault("annotations", {})
        if self.current is None:
            annotations.pop(ACTING, None)
        else:
            annotations[ACTING] = json.dumps(asdict(self.current))
        spec = body.setdefault("spec", {})
        if holding:
            spec["renewTime"] = _stamp(_now())
        else:
            for key in ("holderIdentity", "renewTime", "acquireTime"):
                spec.pop(key, None)
        self.lease = self.store.put(body)


@contextmanager
def lease_held(
    store: LeaseStore, identity: str, command: str, on_takeover: Callable[[str], None] | None = None
) -> Iterator[LeaseJournal]:
    """Hold the release Lease for the block, or raise ReleaseInProgress naming its holder.

    A claim by ``identity`` itself (a restarted automation) is taken over at once;
    someone else's, only once it expired (its holder died without letting go).
    What the previous holder was doing stays the journal's ``interrupted``.
    """
    lease = store.get()
    holder = claim_of(lease)
    if holder is not None and holder != identity:
        doing = acting_of(lease)
        raise ReleaseInProgress(
            f"another release acts on this lab: {holder} holds the Lease {LEASE}"
            + (f", running {doing.describe()}" if doing else ""),
            fix="let it finish (`gitops-lab release status` shows it), then run this again",
        )
    if lease is not None and (lease.get("spec") or {}).get("holderIdentity") and on_takeover:
        on_takeover(f"taking over the Lease {LEASE} from {lease['spec']['holderIdentity']}: it never let go")
    now = _stamp(_now())
    body = lease or {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LEASE}}
    body = json.loads(json.dumps(body))
    body.setdefault("metadata", {}).setdefault("annotations", {})[COMMAND] = command
    body["spec"] = {
        **(body.get("spec") or {}),
        "holderIdentity": identity,
        "acquireTime": now,
        "renewTime": now,
        "leaseDurationSeconds": DURATION_SECONDS,
    }
    try:
        written = store.put(body)
    except LeaseConflict:
        raise ReleaseInProgress(
            f"another release took the Lease {LEASE} at the same moment",
            fix="let it finish (`gitops-lab release status` shows it), then run this again",
        ) from None
    journal = LeaseJournal(store, written, acting_of(lease))
    try:
        yield journal
    finally:
        journal.let_go()  # what it was doing stays in the annotation until a release finishes it

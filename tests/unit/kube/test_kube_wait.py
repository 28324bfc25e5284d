"""kube.wait.wait_for on its own: a fake reader (the object as each read returns
it) and a fake watch stream (the events the API server sends), on a deadline
whose clock the test moves. Nothing here sleeps or measures time."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from gitops_lab.errors import WaitTimeout
from gitops_lab.kube import rest
from gitops_lab.kube.apply import Applier
from gitops_lab.deadline import Deadline
from gitops_lab.kube.wait import AskAgain, wait_for


def deployment(ready: int, want: int = 2, rv: str = "1") -> dict[str, Any]:
    return {
        "metadata": {"name": "model-server", "resourceVersion": rv},
        "spec": {"replicas": want},
        "status": {"readyReplicas": ready},
    }


def rolled_out(obj: dict[str, Any] | None) -> tuple[bool, str]:
    if obj is None:
        return False, "not found"
    ready, want = obj["status"]["readyReplicas"], obj["spec"]["replicas"]
    return ready == want, f"{ready}/{want} ready"


class FakeDeadline(Deadline):
    """A deadline on a clock the test moves with ``advance``."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.now = 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.now)


@dataclass
class FakeReader:
    """The Applier as wait_for uses it: ``get`` returns the next object read, then the last one again."""

    reads: list[dict[str, Any] | None]
    kube: Any = field(default_factory=lambda: type("Kube", (), {"api": None})())
    calls: int = 0

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        self.calls += 1
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    def collection_path(self, api_version: str, kind: str, namespace: str | None = None) -> str:
        return f"/apis/{api_version}/namespaces/{namespace}/deployments"


class FakeResponse:
    """A watch response: each item is an event (a dict) or a callable run at that point of the stream."""

    status = 200

    def __init__(self, items: list[Any]):
        self.items = items

    def stream(self, amt=None, decode_content=False):
        for item in self.items:
            if callable(item):
                item()
            else:
                yield (json.dumps(item) + "\n").encode()

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


@dataclass
class FakeWatches:
    """Serves one scripted response per watch opened, and records each watch's query."""

    scripts: list[list[Any]]
    queries: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, api, path, query, timeout):
        self.queries.append(dict(query))
        return FakeResponse(self.scripts.pop(0) if self.scripts else [])


@pytest.fixture
def watches(monkeypatch):
    def install(*scripts: list[Any]) -> FakeWatches:
        fake = FakeWatches(list(scripts))
        monkeypatch.setattr(rest, "stream", fake)
        return fake

    return install


def wait(reader: FakeReader, deadline: Deadline, progress: list[str] | None = None, **kwargs: Any):
    return wait_for(
        cast(Applier, reader),  # FakeReader has all of an Applier that wait_for uses
        "apps/v1",
        "Deployment",
        "model-server",
        "dev",
        rolled_out,
        deadline,
        "model-server in dev to roll out",
        on_progress=progress.append if progress is not None else None,
        **kwargs,
    )


def test_an_object_ready_at_the_first_read_is_returned_without_watching(watches):
    fake = watches()
    progress: list[str] = []
    obj = wait(FakeReader([deployment(2)]), FakeDeadline(60), progress)
    assert obj["status"]["readyReplicas"] == 2
    assert fake.queries == [] and progress == []


def test_events_move_the_verdict_until_ready_and_each_new_state_is_reported_once(watches):
    fake = watches(
        [
            {"type": "MODIFIED", "object": deployment(1, rv="2")},
            {"type": "MODIFIED", "object": deployment(1, rv="3")},  # same state: not reported again
            {"type": "MODIFIED", "object": deployment(2, rv="4")},
            {"type": "MODIFIED", "object": deployment(0, rv="5")},  # after ready: never read
        ]
    )
    progress: list[str] = []
    obj = wait(FakeReader([deployment(0, rv="1")]), FakeDeadline(60), progress)
    assert obj["metadata"]["resourceVersion"] == "4"
    assert progress == ["0/2 ready", "1/2 ready"]
    # The watch starts where the read left off, for this one object.
    assert fake.queries[0]["resourceVersion"] == "1"
    assert fake.queries[0]["fieldSelector"] == "metadata.name=model-server"


def test_a_deleted_object_is_seen_as_gone_and_waited_for_again(watches):
    watches(
        [
            {"type": "DELETED", "object": deployment(0, rv="2")},
            {"type": "ADDED", "object": deployment(2, rv="3")},
        ]
    )
    progress: list[str] = []
    obj = wait(FakeReader([deployment(0)]), FakeDeadline(60), progress)
    assert obj["metadata"]["resourceVersion"] == "3"
    assert progress == ["0/2 ready", "not found"]


def test_at_the_deadline_the_error_says_what_was_expected_and_what_was_last_seen(watches):
    deadline = FakeDeadline(30)
    watches(
        [
            {"type": "MODIFIED", "object": deployment(1, rv="2")},
            lambda: deadline.advance(30),
        ]
    )
    progress: list[str] = []
    with pytest.raises(WaitTimeout) as raised:
        wait(FakeReader([deployment(0), deployment(1, rv="2")]), deadline, progress)
    assert str(raised.value) == (
        "timed out after 30s waiting for model-server in dev to roll out; last seen: 1/2 ready"
    )
    assert progress == ["0/2 ready", "1/2 ready"]


def test_an_expired_deadline_still_reads_once_and_returns_what_is_ready(watches):
    deadline = FakeDeadline(30)
    deadline.advance(31)
    assert wait(FakeReader([deployment(2)]), deadline)["status"]["readyReplicas"] == 2


def test_a_watch_that_ends_early_is_followed_by_a_read_and_a_watch_from_the_new_version(watches):
    fake = watches(
        [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}],
        [{"type": "MODIFIED", "object": deployment(2, rv="9")}],
    )
    reader = FakeReader([deployment(0, rv="1"), deployment(1, rv="7")])
    progress: list[str] = []
    obj = wait(reader, FakeDeadline(60), progress)
    assert obj["metadata"]["resourceVersion"] == "9"
    assert [q["resourceVersion"] for q in fake.queries] == ["1", "7"]
    assert progress == ["0/2 ready", "1/2 ready"]
    assert reader.calls == 2


def test_a_dropped_stream_is_read_again_not_reported(watches):
    def drop():
        raise ConnectionResetError("connection reset by peer")

    watches([drop], [{"type": "MODIFIED", "object": deployment(2, rv="5")}])
    obj = wait(FakeReader([deployment(0, rv="1"), deployment(1, rv="4")]), FakeDeadline(60))
    assert obj["metadata"]["resourceVersion"] == "5"


def test_an_error_that_is_not_transient_ends_the_wait(watches):
    def refuse():
        raise PermissionError("forbidden")

    watches([refuse])
    with pytest.raises(PermissionError):
        wait(FakeReader([deployment(0)]), FakeDeadline(60))


def test_ask_again_repeats_the_request_while_the_object_is_behind(watches):
    watches([], [])
    requests: list[str] = []
    reader = FakeReader([deployment(0, rv="1"), deployment(0, rv="1"), deployment(2, rv="2")])
    ask = AskAgain(
        behind=lambda obj: obj is not None and obj["status"]["readyReplicas"] == 0,
        request=lambda: requests.append("reconcile"),
        first=0.0,
    )
    obj = wait(reader, FakeDeadline(60), ask_again=ask)
    assert obj["metadata"]["resourceVersion"] == "2"
    assert requests == ["reconcile"] and ask.asked == 1

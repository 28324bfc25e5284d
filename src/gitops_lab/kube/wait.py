"""Watch-based waits: read the object once, then follow its watch stream.

No fixed sleeps. One deadline bounds the whole wait; when a watch ends early
(server timeout, 410 Gone, a dropped connection) the object is read again and
a new watch starts from its resourceVersion. On timeout the error says what
was expected and what was last seen.

A wait can also ask again (``AskAgain``): while the object shows that its
controller has not yet seen what we wait for (an engine on an older commit),
the request is repeated on a bounded backoff, because one request can be
handled before the change is visible to the controller and then nothing asks
again until its next poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.errors import WaitTimeout
from gitops_lab.kube import rest, retry
from gitops_lab.kube.apply import Applier
from gitops_lab.deadline import Deadline

# (ready?, what the object shows now, in words)
Verdict = tuple[bool, str]
Check = Callable[[dict[str, Any] | None], Verdict]


@dataclass
class AskAgain:
    """Repeat ``request()`` while ``behind(obj)``: after ``first`` seconds, doubling up to ``longest``."""

    behind: Callable[[dict[str, Any] | None], bool]
    request: Callable[[], None]
    first: float = 2.0
    longest: float = 30.0
    asked: int = 0
    _interval: float = field(default=0.0, repr=False)
    _due: float = field(default=0.0, repr=False)

    def start(self) -> None:
        self._interval = self.first
        self._due = time.monotonic() + self._interval

    def seconds_until_due(self) -> float:
        return max(0.0, self._due - time.monotonic())

    def maybe_ask(self, obj: dict[str, Any] | None) -> None:
        """Ask again when due and the object is still behind; a transient API error waits for the next turn."""
        if self.seconds_until_due() > 0:
            return
        if self.behind(obj):
            try:
                self.request()
                self.asked += 1
            except Exception as exc:  # only transient errors are expected here
                if not retry.is_transient_cause(exc):
                    raise
            self._interval = min(self._interval * 2, self.longest)
        self._due = time.monotonic() + self._interval


def wait_for(
    applier: Applier,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    check: Check,
    deadline: Deadline,
    expected: str,
    on_progress: Callable[[str], None] | None = None,
    ask_again: AskAgain | None = None,
) -> dict[str, Any]:
    """Return the object once ``check`` passes; raise WaitTimeout at the deadline."""
    from kubernetes import watch

    def read() -> dict[str, Any] | None:
        return retry.call_until(lambda: applier.get(api_version, kind, name, namespace), deadline)

    obj: dict[str, Any] | None = None
    ok, seen = False, "nothing yet (not read before the deadline)"
    try:
        obj = read()
        ok, seen = check(obj)
        last_reported = None
        if ask_again:
            ask_again.start()
        while not ok:
            if seen != last_reported and on_progress:
                on_progress(seen)
                last_reported = seen
            remaining = deadline.remaining()
            if remaining <= 0:
                break
            rv = (obj or {}).get("metadata", {}).get("resourceVersion")
            # With ask_again, the watch ends when the next request is due, so a quiet object is asked again.
            watch_for = min(remaining, ask_again.seconds_until_due() or ask_again.first) if ask_again else remaining
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    _watch_function(applier, api_version, kind, namespace),
                    field_selector=f"metadata.name={name}",
                    resource_version=rv,
                    timeout_seconds=max(1, int(watch_for + 0.999)),
                ):
                    if event.get("type") == "ERROR":
                        break  # usually 410 Gone: re-read and watch again
                    obj = None if event.get("type") == "DELETED" else event.get("object")
                    ok, seen = check(obj)
                    if ok:
                        break
                    if seen != last_reported and on_progress:
                        on_progress(seen)
                        last_reported = seen
                    if deadline.expired:
                        break
            except Exception as exc:  # a dropped stream is re-read below
                if not retry.is_transient_cause(exc) and getattr(exc, "status", None) != 410:
                    raise
            finally:
                stream.stop()
            if not ok:
                if deadline.expired:  # no call is left to make: say what was last seen
                    break
                obj = read()
                ok, seen = check(obj)
                if not ok and ask_again:
                    ask_again.maybe_ask(obj)
    except WaitTimeout as exc:
        # A call met the command's deadline (the client's own check, a moment before this wait's own
        # deadline object says so): the wait's words, with what was last seen.
        raise WaitTimeout(f"timed out after {deadline.describe()} waiting for {expected}; last seen: {seen}") from exc
    if not ok:
        raise WaitTimeout(f"timed out after {deadline.describe()} waiting for {expected}; last seen: {seen}")
    return obj  # type: ignore[return-value]


def wait_deleted(
    applier: Applier,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    deadline: Deadline,
    expected: str,
    pending: str = "still there",
    on_progress: Callable[[str], None] | None = None,
) -> None:
    """Until the object is gone (``pending`` is what a timeout says was last seen)."""
    wait_for(
        applier, api_version, kind, name, namespace, lambda o: (o is None, pending), deadline, expected, on_progress
    )


def _watch_function(applier: Applier, api_version: str, kind: str, namespace: str | None):
    path = applier.collection_path(api_version, kind, namespace)
    names = {
        "field_selector": "fieldSelector",
        "resource_version": "resourceVersion",
        "timeout_seconds": "timeoutSeconds",
        "allow_watch_bookmarks": "allowWatchBookmarks",
    }

    def list_or_watch(**kwargs: Any):
        query = [("watch", "true")]
        for key, value in kwargs.items():
            if key in names and value not in (None, ""):
                query.append((names[key], str(value).lower() if isinstance(value, bool) else str(value)))
        timeout = float(kwargs.get("timeout_seconds") or 60) + 10
        return rest.stream(applier.kube.api, path, query, (10, timeout))

    return list_or_watch


def warning_events(applier: Applier, namespace: str, limit: int = 3) -> list[str]:
    """The newest Warning events in ``namespace``, as "Kind/name: reason: message"."""
    try:
        items = retry.call(
            lambda: applier.kube.core().list_namespaced_event(
                namespace, field_selector="type=Warning", _request_timeout=10
            )
        ).items
    except Exception:  # events only add detail to an error already raised
        return []

    def when(event) -> str:
        stamp = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
        return stamp.isoformat() if stamp else ""

    items = sorted(items, key=when, reverse=True)[:limit]
    return [
        f"{e.involved_object.kind}/{e.involved_object.name}: {e.reason}: {' '.join((e.message or '').split())}"
        for e in items
    ]

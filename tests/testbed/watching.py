"""Waiting on the API in tests: read once, then follow the watch stream (bounded)."""

from __future__ import annotations

import json
import time
from typing import Any, Callable


from .processes import TestbedError


# Waiting on the API: read once, then follow the watch stream (bounded)
def _field(obj, name):
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def watch_until(
    what: str,
    list_fn: Callable,
    predicate: Callable[[Any], bool],
    timeout: float,
    health: Callable[[], None] | None = None,
    **kwargs,
):
    """Return the first object from list_fn(**kwargs) (and its watch) that
    satisfies predicate. Each watch round lasts at most 5 s, and health() runs
    between rounds, so a dead controller fails the wait instead of hanging it.
    """
    from kubernetes import watch

    deadline = time.monotonic() + timeout
    last = None
    while True:
        if health:
            health()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TestbedError(
                f"timed out after {timeout:.0f}s waiting for {what}; last seen:\n"
                f"{json.dumps(_plain(last), indent=1, default=str)[:4000]}"
            )
        lst = list_fn(**kwargs)
        items = _field(lst, "items") or []
        for obj in items:
            last = obj
            if predicate(obj):
                return obj
        meta = _field(lst, "metadata")
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else meta.resource_version
        secs = max(1, min(5, int(remaining)))
        w = watch.Watch()
        try:
            for ev in w.stream(list_fn, resource_version=rv, timeout_seconds=secs, _request_timeout=secs + 5, **kwargs):
                obj = ev["object"]
                if ev["type"] == "ERROR":
                    break  # e.g. resourceVersion too old: read again
                last = obj
                if ev["type"] != "DELETED" and predicate(obj):
                    return obj
        except Exception as exc:  # a broken stream is read again
            last = last if last is not None else exc
        finally:
            w.stop()


def _plain(obj):
    if obj is None or isinstance(obj, (dict, list, str, Exception)):
        return obj if not isinstance(obj, Exception) else repr(obj)
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)

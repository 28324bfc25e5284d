"""Bounded retries of transient API errors (server starting, 5xx, 409, 429)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gitops_lab.deadline import current_deadline

T = TypeVar("T")
TRANSIENT_STATUS = {409, 429, 500, 502, 503, 504}
ATTEMPTS = 6


def is_transient(exc: BaseException) -> bool:
    from kubernetes.client import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUS or exc.status == 0
    return isinstance(exc, (HTTPError, ConnectionError, TimeoutError))


def is_transient_cause(exc: BaseException) -> bool:
    """Transient itself, or a typed error (ClusterError) raised from a transient one."""
    return is_transient(exc) or (exc.__cause__ is not None and is_transient(exc.__cause__))


def call(fn: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run ``fn``, retrying transient errors with exponential backoff (at most ~6 s in all)."""
    import tenacity

    deadline = current_deadline()  # no retry starts after the command's deadline
    stop: Any = tenacity.stop_after_attempt(attempts)
    if deadline is not None:
        stop = stop | tenacity.stop_after_delay(max(0.0, deadline.remaining()))
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient_cause),
        stop=stop,
        wait=tenacity.wait_exponential(multiplier=0.1, max=2),
        reraise=True,
    )
    return retrying(fn)


def call_until(fn: Callable[[], T], deadline) -> T:
    """Run ``fn``, retrying transient errors (also when wrapped, as a ClusterError's cause) until ``deadline``.

    For waits: an API server that restarts mid-wait is waited for, not reported.
    """
    import tenacity

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient_cause),
        stop=tenacity.stop_after_delay(max(0.0, deadline.remaining())),
        wait=tenacity.wait_exponential(multiplier=0.2, max=3),
        reraise=True,
    )
    return retrying(fn)

"""HTTP downloads that end by the command's deadline.

A socket timeout alone bounds each read, not the transfer: a server that sends
a byte a minute never times out. Here the whole download has one end, the
lesser of its own bound and what is left of the command's deadline
(``kube.deadline.command_deadline``).
"""

from __future__ import annotations

import urllib.error
import urllib.request

from gitops_lab.errors import WaitTimeout
from gitops_lab.kube.deadline import Deadline, within_deadline

CHUNK = 64 * 1024
#: No single read waits longer than this for the next bytes.
READ_SECONDS = 30.0


def download(url: str, what: str, seconds: float) -> bytes:
    """The body at ``url``; WaitTimeout when it is not all here in time.

    urllib.error.URLError and OSError pass through for the caller to word.
    """
    deadline = Deadline(within_deadline(seconds))
    if deadline.expired:
        raise _late(url, what, deadline)
    chunks: list[bytes] = []
    try:
        with urllib.request.urlopen(url, timeout=_read_timeout(deadline)) as response:  # pinned URLs
            while True:
                if deadline.expired:
                    raise _late(url, what, deadline)
                _shorten_reads(response, deadline)
                chunk = response.read1(CHUNK)  # what one read brings: read(n) waits for all n bytes
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
    except TimeoutError as exc:  # a read or the connect waited out the time left
        raise _late(url, what, deadline) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _late(url, what, deadline) from exc
        raise


def _read_timeout(deadline: Deadline) -> float:
    return max(0.1, min(READ_SECONDS, deadline.remaining()))


def _shorten_reads(response: object, deadline: Deadline) -> None:
    """The next read waits no longer than the time left (CPython's response wraps a SocketIO on the socket)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(_read_timeout(deadline))


def _late(url: str, what: str, deadline: Deadline) -> WaitTimeout:
    return WaitTimeout(
        f"downloading {what} from {url} did not finish within {deadline.describe()}",
        fix="check the network (or a proxy) and run the command again, or give it a larger --timeout",
    )

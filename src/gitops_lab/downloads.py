"""HTTP downloads that end by the command's deadline, and the one way a pinned file is fetched.

A socket timeout alone bounds each read, not the transfer: a server that sends
a byte a minute never times out. Here the whole download has one end, the
lesser of its own bound and what is left of the command's deadline
(``deadline.command_deadline``).

``download_verified`` is how every pinned file (kind, the engines' release
manifests, local or mirrored copies of them) reaches the cache: streamed into a
temporary file beside its target, its SHA-256 checked, then renamed into place,
so a failed or altered download never leaves a half file where the real one goes.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from gitops_lab.deadline import Deadline, within_deadline
from gitops_lab.errors import DownloadError, WaitTimeout

CHUNK = 64 * 1024
#: No single read waits longer than this for the next bytes.
READ_SECONDS = 30.0
#: Said after a download that failed or is not the pinned file, when the caller has nothing better.
RETRY_FIX = "check the network (or a proxy) and run the command again"


def download(url: str, what: str, seconds: float, fix: str = RETRY_FIX) -> bytes:
    """The body at ``url`` (a small file such as a checksum; a pinned file goes through ``download_verified``).

    WaitTimeout when it is not all here in time; DownloadError, carrying ``fix``, when it cannot be fetched.
    """
    return b"".join(_chunks(url, what, seconds, fix))


def accepted_digests(sha256: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """The pinned SHA-256s, lowercase; None where nothing is pinned."""
    if sha256 is None:
        return None
    return (sha256.lower(),) if isinstance(sha256, str) else tuple(d.lower() for d in sha256)


def download_verified(
    url: str,
    target: Path,
    what: str,
    sha256: str | Sequence[str] | None,
    seconds: float,
    fix: str = RETRY_FIX,
    mode: int | None = None,
) -> str:
    """Fetch ``url`` into ``target`` and return its SHA-256; ``target`` is replaced only by a file that matches.

    ``sha256`` is the pinned digest, or the pinned digests of which the file must have one; None where
    nothing is pinned (then the caller records the one returned, as the engine cache does for a Flux
    manifest downloaded from a URL). The bytes go to a temporary file in ``target``'s own
    folder, with ``mode`` when given, and are renamed into place once whole and verified: on a wrong
    digest, a timeout, a refused download or Ctrl-C nothing is left behind and ``target`` is as it was.
    ``url`` may be a file:// URL (a classroom's local copy), checked the same way.
    """
    # The folders this call makes, deepest first: a failed download removes them again.
    made = list(itertools.takewhile(lambda folder: not folder.exists(), [target.parent, *target.parent.parents]))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    part, kept = Path(name), False
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(url, what, seconds, fix):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        accepted = accepted_digests(sha256)
        if accepted is not None and got not in accepted:
            raise DownloadError(
                f"{what} from {url} is not the pinned file: expected SHA-256 {' or '.join(accepted)}, got {got}",
                fix="the download was altered, cut short or is another release; run the command again, "
                "and report it if it persists",
            )
        if mode is not None:
            part.chmod(mode)
        os.replace(part, target)
        kept = True
        return got
    finally:
        part.unlink(missing_ok=True)
        for folder in made if not kept else []:
            try:
                folder.rmdir()
            except OSError:  # not empty: something else was put there meanwhile
                break


def _chunks(url: str, what: str, seconds: float, fix: str) -> Iterator[bytes]:
    """The body at ``url`` as it arrives, every read bounded by one deadline for the whole transfer."""
    deadline = Deadline(within_deadline(seconds))
    if deadline.expired:
        raise _late(url, what, deadline)
    try:
        with urllib.request.urlopen(url, timeout=_read_timeout(deadline)) as response:  # pinned URLs
            while True:
                if deadline.expired:
                    raise _late(url, what, deadline)
                _shorten_reads(response, deadline)
                chunk = response.read1(CHUNK)  # what one read brings: read(n) waits for all n bytes
                if not chunk:
                    return
                yield chunk
    except TimeoutError as exc:  # a read or the connect waited out the time left
        raise _late(url, what, deadline) from exc
    except urllib.error.HTTPError as exc:
        raise DownloadError(
            f"cannot download {what} from {url}: the server answered {exc.code} {exc.reason}", fix=fix
        ) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _late(url, what, deadline) from exc
        raise DownloadError(f"cannot download {what} from {url}: {exc.reason}", fix=fix) from exc
    except (OSError, http.client.HTTPException) as exc:  # reset, or the body cut short of its Content-Length
        raise DownloadError(f"cannot download {what} from {url}: {exc or type(exc).__name__}", fix=fix) from exc


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

"""Reading the files gitops-lab keeps or is handed, with one clear error for any content.

Every reader goes through ``read_text``: a size limit, text only (no NUL bytes,
UTF-8), and a UsageError that names the file, the problem and the fix. A file
that does not exist raises FileNotFoundError, which callers turn into their
own "not set up yet" message.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from gitops_lab.errors import UsageError

#: Nothing gitops-lab reads is anywhere near this; a bigger file is a mistake.
MAX_BYTES = 1_000_000


def read_text(path: Path, what: str, fix: str, limit: int = MAX_BYTES) -> str:
    """The text of ``path`` (a ``what``, e.g. "state file"); UsageError for any problem but a missing file."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise UsageError(f"the {what} {path} is {size:,} bytes, more than the {limit:,} it may have", fix=fix)
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except NotADirectoryError as exc:  # a file where a folder on the way should be: the file is not there
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path)) from exc
    except IsADirectoryError as exc:
        raise UsageError(f"the {what} {path} is a folder, not a file", fix=fix) from exc
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror or exc}", fix=fix) from exc
    if b"\0" in data:
        raise UsageError(f"the {what} {path} is binary, not text", fix=fix)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"the {what} {path} is not UTF-8 text (byte {exc.start})", fix=fix) from exc


def load_json_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    """A JSON object from ``path``; UsageError when it is not valid JSON or not an object."""
    text = read_text(path, what, fix)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the {what} {path} is not valid JSON ({exc.msg} at line {exc.lineno})", fix=fix) from exc
    if not isinstance(data, dict):
        raise UsageError(f"the {what} {path} holds a JSON {_json_kind(data)}, not an object", fix=fix)
    return data


def _json_kind(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")

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


def read_exact(path: Path) -> str:
    """A text file as it is on disk, for an edit that must change only what it means to.

    Line ends are kept (a CRLF file stays CRLF: a one-line change stays a one-line
    diff) and a byte that is not UTF-8 is carried through (``surrogateescape``)
    rather than refused: rolling back must always be possible. Write it back
    with ``write_exact``.
    """
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as file:
        return file.read()


def write_exact(path: Path, text: str) -> None:
    """Write what ``read_exact`` read (and edited) back, byte for byte where it was not edited."""
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as file:
        file.write(text)


def load_json_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    """A JSON object from ``path``; UsageError when it is not valid JSON or not an object."""
    return parse_json_object(read_text(path, what, fix), f"the {what} {path}", fix)


def parse_json_object(text: str, where: str, fix: str) -> dict[str, Any]:
    """A JSON object from ``text`` (``where`` names it: "the state file /x"); UsageError for anything else.

    Bounded whatever the text holds: nesting deeper than Python's stack, a number
    with thousands of digits and NaN/Infinity (not JSON, and a metric that is
    "Infinity" must not pass a gate) are refused in one short line.
    """
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno})", fix=fix) from exc
    except RecursionError as exc:
        raise UsageError(f"{where} is not valid JSON (nested too deep)", fix=fix) from exc
    except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits(), or NaN/Infinity
        problem = str(exc) if isinstance(exc, _NotANumber) else "a number too long to read"
        raise UsageError(f"{where} is not valid JSON ({problem})", fix=fix) from exc
    if not isinstance(data, dict):
        raise UsageError(f"{where} holds a JSON {json_kind(data)}, not an object", fix=fix)
    return data


class _NotANumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(f"{name} is not a number JSON allows")


def json_kind(value: Any) -> str:
    """What a JSON value is, in words: object, list, string, number, boolean, null."""
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null"
    )


def yaml_loader() -> type:
    """A yaml SafeLoader that refuses aliases (``*name``).

    safe_load shares an aliased node instead of copying it, but anything that then
    walks the result (validation, a merge, JSON output) walks every copy: nine
    levels of nine aliases ("billion laughs") are 387 million strings. No file
    gitops-lab reads needs an alias, so one is refused at the line it sits on.
    """
    import yaml

    global _NO_ALIAS_LOADER
    if _NO_ALIAS_LOADER is None:

        class NoAliasLoader(yaml.SafeLoader):
            def compose_node(self, parent: Any, index: Any) -> Any:
                if self.check_event(yaml.AliasEvent):
                    event = self.peek_event()
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"an alias (*{event.anchor}) is not allowed here; write the value out",
                        event.start_mark,
                    )
                return super().compose_node(parent, index)

        _NO_ALIAS_LOADER = NoAliasLoader
    return _NO_ALIAS_LOADER


_NO_ALIAS_LOADER: type | None = None

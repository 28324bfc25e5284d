"""Who is in the class: learner names from a file or a count, each a usable DNS label."""

from __future__ import annotations

import codecs
from pathlib import Path

from gitops_lab.adapters.engines.tenancy import check_learner_name
from gitops_lab.adapters.repo.platform import PLATFORM_REPOSITORY
from gitops_lab.errors import UsageError
from gitops_lab.textfiles import MAX_BYTES


def learners_from(file: str | None, count: int | None, prefix: str = "learner") -> list[str]:
    """Learner names from a file (one per line, # comments) or ``prefix-01`` .. ``prefix-NN``."""
    if bool(file) == bool(count):
        raise UsageError("say who is in the class", fix="pass either --learners FILE or --count N")
    if file:
        lines = _learner_lines(Path(file).expanduser())
        names = [line.split("#", 1)[0].strip().lower() for line in lines]
        names = [n for n in names if n]
    else:
        names = [f"{prefix}-{i:02d}" for i in range(1, (count or 0) + 1)]
    problems = []
    for n in names:
        try:
            check_learner_name(n)
        except UsageError as exc:
            problems.append(exc.message)
        else:
            if n == PLATFORM_REPOSITORY or n.endswith(f"-{PLATFORM_REPOSITORY}"):
                # <learner>.git would be the name of another learner's platform repository (<learner>-ml-platform-pipelines)
                problems.append(f"learner name {n!r} is the name of a platform repository")
    if problems:
        raise UsageError(
            "; ".join(problems),
            fix=f"use lower-case letters, digits and '-' (a DNS label), not ending in -{PLATFORM_REPOSITORY}",
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"learners named twice: {', '.join(dupes)}", fix="give every learner their own name")
    if not names:
        raise UsageError(f"the learners file {file} names nobody", fix="write one learner name a line")
    return names


def _learner_lines(path: Path) -> list[str]:
    """The lines of a learners file: UTF-8, or UTF-8 or UTF-16 with a byte-order mark (what Windows editors save)."""
    fix = "save it as UTF-8 text with one learner name a line"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the learners file {path}: {exc.strerror or exc}", fix=fix) from exc
    if len(data) > MAX_BYTES:
        raise UsageError(
            f"the learners file {path} is {len(data):,} bytes, more than the {MAX_BYTES:,} it may have", fix=fix
        )
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding).splitlines()
            except UnicodeDecodeError as exc:
                raise UsageError(f"the learners file {path} is not valid {encoding} text", fix=fix) from exc
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"the learners file {path} is not UTF-8 text (byte {exc.start})", fix=fix) from exc

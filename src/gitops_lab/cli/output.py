"""What commands print on stdout besides JSON: aligned tables, and the verdict table of gates and checks."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, in the order given.

    Cells come from Git (a commit's subject, its author), where anyone can put an
    escape sequence or a carriage return: they are shown as ``\\x1b``, never sent
    to the terminal, and a row stays one line.
    """
    cells = [[printable(cell) for cell in line] for line in (header, *rows)]
    widths = [max(len(cell) for cell in column) for column in zip(*cells)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines)


def printable(value: object) -> str:
    """``value`` as text with every control character written as an escape (``\\x1b``, ``\\r``)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def verdict_table(results: list, first_column: str) -> str:
    """A <first_column> / VERDICT / SUMMARY table, each failed row followed by what failed."""
    rows = [(r.name, r.verdict, r.summary) for r in results]
    lines = [format_table((first_column, "VERDICT", "SUMMARY"), rows)]
    for r in results:
        shown = [d for d in r.details if d.startswith("warn: ") or (not r.passed and d.startswith("fail: "))]
        if shown:
            lines.append(f"\n{r.name}:")
            lines.extend(f"  {d}" for d in shown)
    return "\n".join(lines)

"""The design review's rubric (docs/design-review-rubric.md) and the score line a reviewer writes in a review.

A review's text carries one line of this form, anywhere in it (other text, a
list marker, bold or backticks around it are ignored)::

    Scores: 2,2,1,2,2,1,2 (12/14)

one score per criterion in the rubric's order, each 0, 1 or 2, then the total
out of 14. The line is found by its first word: a line starting with
"Score" or "Scores" followed by a colon or a digit is meant as the score line,
so a line like that which is not exactly right is reported as malformed,
saying what is wrong (a count, a range, a total), never taken as no line.
``meets_pass_mark`` is the rubric's own: 10 or more of 14 with no 0.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

#: The rubric's criteria, in its order (the table in docs/design-review-rubric.md).
CRITERIA = (
    "ML vs software pipelines",
    "Stages and hand-offs",
    "Triggers",
    "Gates and thresholds",
    "Promotion and rollback",
    "Security controls",
    "Failure modes and paging",
)
LOWEST, HIGHEST = 0, 2  # each criterion's score
MAXIMUM = HIGHEST * len(CRITERIA)  # 14
PASS_TOTAL = 10  # the rubric approves at 10 or more of 14 with no 0
PASS_MARK = f"{PASS_TOTAL} or more of {MAXIMUM} with no {LOWEST}"
EXAMPLE = "Scores: 2,2,1,2,2,1,2 (12/14)"

OK, MALFORMED, MISSING = "ok", "malformed", "missing"

# A line meant as the score line: "Score"/"Scores", then a colon or a number.
_INTENT = re.compile(r"scores?\b\s*(?::|(?=\d))", re.IGNORECASE)
_FORM = re.compile(r"scores\s*:\s*(?P<scores>[^()]*?)\s*\(\s*(?P<total>[^()/]*?)\s*/\s*(?P<out_of>[^()]*?)\s*\)", re.I)
_DECORATION = str.maketrans("", "", "*`_")  # Markdown emphasis and code around or inside the line


@dataclass(frozen=True)
class ScoreLine:
    """What a review's score line says: ``status`` ok (``scores`` and ``total`` read), malformed (``problems``
    says why) or missing (no line meant as one)."""

    status: str
    scores: list[int] | None = None
    total: int | None = None
    maximum: int = MAXIMUM
    line: int | None = None  # its line number in the review's text (1-based)
    text: str = ""  # the line as the reviewer wrote it
    problems: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str:
        """Why there are no scores, in words ("" when there are)."""
        if self.status == MISSING:
            return f"no score line (write one like `{EXAMPLE}`)"
        return "; ".join(self.problems)

    @property
    def meets_pass_mark(self) -> bool:
        """The rubric's pass mark: ``PASS_TOTAL`` or more with no criterion at ``LOWEST``."""
        return self.scores is not None and sum(self.scores) >= PASS_TOTAL and LOWEST not in self.scores

    def below_pass_mark(self) -> str:
        """Why the scores miss the pass mark, in words ("" when they meet it or there are none)."""
        if self.scores is None or self.meets_pass_mark:
            return ""
        why = [f"{sum(self.scores)}/{MAXIMUM} is under {PASS_TOTAL}"] if sum(self.scores) < PASS_TOTAL else []
        why += [
            f"criterion {i} ({CRITERIA[i - 1]}) scored {LOWEST}" for i, s in enumerate(self.scores, 1) if s == LOWEST
        ]
        return f"below the pass mark ({PASS_MARK}): {', '.join(why)}"

    def describe(self) -> str:
        """One line for a report: the scores and total with the pass mark, or what is wrong with the line."""
        if self.scores is None:
            where = f" (line {self.line} of the review)" if self.line else ""
            return f"malformed score line{where}: {self.problem}" if self.status == MALFORMED else self.problem
        mark = "meets the pass mark" if self.meets_pass_mark else self.below_pass_mark()
        return f"scores {','.join(map(str, self.scores))} ({self.total}/{self.maximum}), {mark}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "problem": self.problem,
            "meets_pass_mark": self.meets_pass_mark,
        }


def _clean(line: str) -> str:
    """The line without Markdown decoration: a quote or list marker, emphasis, code."""
    return line.translate(_DECORATION).strip().lstrip(">-+# \t").strip()


def parse_scores(body: str) -> ScoreLine:
    """The score line of a review's text (see the module's docstring); strict about the count, each score's
    range and the total, tolerant of everything around the line."""
    meant = [(n, raw) for n, raw in enumerate(body.splitlines(), 1) if _INTENT.match(_clean(raw))]
    if not meant:
        return ScoreLine(MISSING)
    if len(meant) > 1:
        numbers = ", ".join(str(n) for n, _ in meant)
        return ScoreLine(
            MALFORMED,
            line=meant[0][0],
            text=meant[0][1].strip(),
            problems=[f"{len(meant)} score lines (lines {numbers}); write exactly one"],
        )
    number, raw = meant[0]
    found = _FORM.match(_clean(raw))
    if not found:
        return ScoreLine(
            MALFORMED, line=number, text=raw.strip(), problems=[f"not in the form `{EXAMPLE}`: {raw.strip()!r}"]
        )
    problems: list[str] = []
    items = [item.strip() for item in found["scores"].split(",")] if found["scores"].strip() else []
    scores = []
    for i, item in enumerate(items, 1):
        if not re.fullmatch(r"[+-]?\d+", item):
            problems.append(f"score {i} {item!r} is not a number")
            continue
        scores.append(int(item))
        if not LOWEST <= int(item) <= HIGHEST:
            which = f"criterion {i} ({CRITERIA[i - 1]})" if i <= len(CRITERIA) else f"score {i}"
            problems.append(f"{which} scored {int(item)}, outside {LOWEST} to {HIGHEST}")
    if len(items) != len(CRITERIA):
        problems.append(
            f"{len(items)} score{'s' if len(items) != 1 else ''} where the rubric has {len(CRITERIA)} criteria "
            "(one score each, in the rubric's order)"
        )
    out_of, total = found["out_of"], found["total"]
    if out_of != str(MAXIMUM):
        problems.append(f"the total is out of {out_of!r} where the rubric's maximum is {MAXIMUM}")
    if not total.isdigit():
        problems.append(f"the total {total!r} is not a number")
    elif len(scores) == len(items) and int(total) != sum(scores):
        problems.append(f"the total says {int(total)} where the scores add up to {sum(scores)}")
    if problems:
        return ScoreLine(MALFORMED, line=number, text=raw.strip(), problems=problems)
    return ScoreLine(OK, scores=scores, total=int(total), line=number, text=raw.strip())

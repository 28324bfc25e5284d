"""Structured commit messages: a subject, an optional body, and Git trailers.

Every change gitops-lab commits carries ``Gitops-Lab-Action`` plus the facts of
the change (``Environment``, ``Model-Version``, ``Previous-Version``,
``Promoted-From``, ``Reverts``, gate verdicts). History is read back from them.
"""

from __future__ import annotations

ACTION = "Gitops-Lab-Action"
ENVIRONMENT = "Environment"
MODEL_VERSION = "Model-Version"
PREVIOUS_VERSION = "Previous-Version"
PROMOTED_FROM = "Promoted-From"
REVERTS = "Reverts"
# Written by `gitops-lab release` on the promotions and rollbacks it makes (workflows/release.py),
# read back as the demo's evidence (assessment/evidence.py).
RELEASE_TRIGGER = "Release-Trigger"
ROLLBACK_REASON = "Rollback-Reason"
ROLLED_BACK_BY = "Rolled-Back-By"
#: The prefix of the verification checks' trailers (``Verify-Accuracy: fail (...)``), one per check.
VERIFY_PREFIX = "Verify"


def compose(subject: str, trailers: list[tuple[str, str]], body: str = "") -> str:
    """A commit message whose last paragraph is the trailer block."""
    parts = [subject.strip()]
    if body.strip():
        parts.append(body.strip())
    parts.append("\n".join(f"{key}: {value}" for key, value in trailers))
    return "\n\n".join(parts) + "\n"


def parse(block: str) -> dict[str, list[str]]:
    """Parse ``git log --format=%(trailers:only,unfold)`` output into key -> values."""
    found: dict[str, list[str]] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            found.setdefault(key.strip(), []).append(value.strip())
    return found

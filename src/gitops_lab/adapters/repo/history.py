"""An environment's history, read from the overlay's own Git history.

Every commit that changed the environment's model version line is an entry:
gitops-lab's own commits carry trailers (``Gitops-Lab-Action``, ...), and any
other commit (a hand edit, a plain ``git revert``) is an entry with action
``manual``, its author and subject. Commits with gitops-lab trailers for the
environment that change no file (approvals) are entries too. The version and
previous version of a change are read from the diff, never taken on trust
from trailers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import RepoLayout, overlay_path, version_on_line

# Fields and records are separated by NUL, the one byte a commit message cannot hold
# (git cuts the message there): any other separator can be forged by a commit's text.
_FIELDS = ["%H", "%an", "%ae", "%aI", "%s", "%b", "%(trailers:only,unfold)"]
_FORMAT = "%x00".join(_FIELDS) + "%x00"
_RECORD = "\x00"
_REVERTS_BODY = re.compile(r"This reverts commit ([0-9a-f]{40})")

MANUAL = "manual"
#: Actions that put a whole tree back to a known state: nothing before them can be rolled back to by revert.
BASELINE_ACTIONS = ("seed", "restore", "lab-reset")


class LogEntry(NamedTuple):
    sha: str
    author: str
    email: str
    date: str
    subject: str
    body: str
    trailers: dict[str, list[str]]

    def trailer(self, key: str) -> str | None:
        values = self.trailers.get(key)
        return values[-1] if values else None


@dataclass
class HistoryEntry:
    commit: str
    action: str
    environment: str
    version: str
    previous: str | None
    author: str
    date: str
    subject: str
    promoted_from: str | None = None
    reverts: str | None = None
    trailers: dict[str, str] = field(default_factory=dict)
    email: str = ""
    #: True when the commit changed the environment's model version (an approval does not).
    changed: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def who(self) -> str:
        return f"{self.author} <{self.email}>" if self.email else self.author


def log_entries(git: Git, rev: str = "HEAD") -> list[LogEntry]:
    """Every commit reachable from rev, newest first, with its trailers parsed."""
    raw = git.out("log", f"--format={_FORMAT}", rev)
    tokens = raw.split("\x00")
    entries = []
    for start in range(0, len(tokens) - len(_FIELDS) + 1, len(_FIELDS)):
        sha, author, email, date, subject, body, block = tokens[start : start + len(_FIELDS)]
        entries.append(LogEntry(sha.strip("\n"), author, email, date, subject, body, t.parse(block)))
    return entries


def version_changes(git: Git, env: str, rev: str = "HEAD") -> dict[str, tuple[str | None, str | None]]:
    """commit -> (previous, version) for every commit on rev's first-parent line that changed env's version.

    Read from the overlay's diffs, so a hand edit or a plain `git revert` counts
    exactly like a gitops-lab commit. The commit that created the overlay has
    previous None.
    """
    raw = git.out("log", "--first-parent", "-m", "-p", "--unified=0", "--format=%x00%H", rev, "--", overlay_path(env))
    changes: dict[str, tuple[str | None, str | None]] = {}
    for record in raw.split(_RECORD):
        lines = record.strip("\n").splitlines()
        if not lines:
            continue
        removed = added = None
        for line in lines[1:]:
            if line.startswith(("---", "+++")):
                continue
            if line.startswith("-"):
                removed = version_on_line(line[1:]) or removed
            elif line.startswith("+"):
                added = version_on_line(line[1:]) or added
        if removed != added:
            changes[lines[0].strip()] = (removed, added)
    return changes


def history(path: str | Path, env: str, rev: str = "HEAD") -> list[HistoryEntry]:
    """Every change of ``env``'s model version, plus gitops-lab's commits for ``env``, newest first.

    The seed commit closes the list, with the version the environment started on.
    """
    RepoLayout(path).check_env(env)
    git = Git(path)
    changes = version_changes(git, env, rev)
    logged = log_entries(git, rev)
    by_sha = {entry.sha: entry for entry in logged}
    merged_in: set[str] = set()
    result: list[HistoryEntry] = []
    for merge in logged:
        action = merge.trailer(t.ACTION)
        change = changes.get(merge.sha)
        entry = merge
        if change is not None and not action:
            # A pull request's merge (promotion by pull request on a forge): the change is the gitops-lab
            # commit it merged, shown once, at the merge that brought it onto main.
            merged = _merged_change(git, merge.sha, env, by_sha)
            if merged is not None:
                entry, action = merged, merged.trailer(t.ACTION)
                merged_in.add(merged.sha)
        elif merge.sha in merged_in:
            continue
        if change is None and not (action and entry.trailer(t.ENVIRONMENT) == env):
            continue
        previous, version = change if change else (entry.trailer(t.PREVIOUS_VERSION), entry.trailer(t.MODEL_VERSION))
        reverts = entry.trailer(t.REVERTS)
        if reverts is None and not action:
            found = _REVERTS_BODY.search(entry.body)
            reverts = found.group(1) if found else None
        result.append(
            HistoryEntry(
                commit=merge.sha,
                action=action or MANUAL,
                environment=env,
                version=version or "",
                previous=previous,
                author=entry.author,
                date=merge.date,
                subject=entry.subject,
                promoted_from=entry.trailer(t.PROMOTED_FROM),
                reverts=reverts,
                trailers={key: values[-1] for key, values in entry.trailers.items()},
                email=entry.email,
                changed=change is not None,
            )
        )
    return result


def _merged_change(git: Git, sha: str, env: str, by_sha: dict[str, LogEntry]) -> LogEntry | None:
    """The gitops-lab commit for ``env`` that the merge ``sha`` brought in (its second parent), if it is one."""
    second = git.run("rev-parse", "--verify", "--quiet", f"{sha}^2", check=False).stdout.strip()
    merged = by_sha.get(second)
    if merged is not None and merged.trailer(t.ACTION) and merged.trailer(t.ENVIRONMENT) == env:
        return merged
    return None


def versions_in_effect(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    """The changes of version still in effect, oldest first: what `rollback` can undo, one by one.

    Walks the changes oldest first, keeping a stack:
    - the seed, a restore or a lab reset starts the stack afresh (a baseline);
    - a rollback, a revert or a hand edit back to a version still on the stack
      undoes everything above that version;
    - any other change (a promotion, a deploy, a hand edit to a new version) is pushed.
    The last element is the change that set the version the environment runs now.
    """
    stack: list[HistoryEntry] = []
    for entry in reversed(entries):
        if not entry.changed or not entry.version:
            continue
        below = [e.version for e in stack[:-1]]
        undo = entry.action == "rollback" or entry.reverts or (entry.action == MANUAL and entry.version in below)
        if entry.action in BASELINE_ACTIONS or not stack:
            stack = [entry]
        elif undo:
            while stack and stack[-1].version != entry.version:
                stack.pop()
            if not stack:
                stack = [entry]
        else:
            stack.append(entry)
    return stack

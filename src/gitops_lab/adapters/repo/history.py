"""An environment's promotions and rollbacks, read from commit trailers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import RepoLayout, overlay_path, version_in_text

_FIELD = "\x1f"
_RECORD = "\x1e"
_FORMAT = _FIELD.join(["%H", "%an", "%aI", "%s", "%(trailers:only,unfold)"]) + _RECORD


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

    def to_dict(self) -> dict:
        return asdict(self)


def log_entries(git: Git, rev: str = "HEAD") -> list[tuple[str, str, str, str, dict[str, list[str]]]]:
    """(sha, author, date, subject, trailers) of every commit reachable from rev, newest first."""
    raw = git.out("log", f"--format={_FORMAT}", rev)
    entries = []
    for record in raw.split(_RECORD):
        record = record.strip("\n")
        if not record:
            continue
        sha, author, date, subject, block = (record.split(_FIELD) + [""] * 5)[:5]
        entries.append((sha, author, date, subject, t.parse(block)))
    return entries


def history(path: str | Path, env: str) -> list[HistoryEntry]:
    """Promotions, rollbacks and other gitops-lab changes of ``env``, newest first.

    The seed commit closes the list, with the version the environment started on.
    """
    layout = RepoLayout(path)
    layout.check_env(env)
    git = Git(path)
    result: list[HistoryEntry] = []
    for sha, author, date, subject, found in log_entries(git):
        action = _one(found, t.ACTION)
        if action == "seed":
            text = git.out("show", f"{sha}:{overlay_path(env)}")
            result.append(
                HistoryEntry(sha, "seed", env, version_in_text(text, overlay_path(env)), None, author, date, subject)
            )
            continue
        if not action or _one(found, t.ENVIRONMENT) != env:
            continue
        result.append(
            HistoryEntry(
                commit=sha,
                action=action,
                environment=env,
                version=_one(found, t.MODEL_VERSION) or "",
                previous=_one(found, t.PREVIOUS_VERSION),
                author=author,
                date=date,
                subject=subject,
                promoted_from=_one(found, t.PROMOTED_FROM),
                reverts=_one(found, t.REVERTS),
                trailers={key: values[-1] for key, values in found.items()},
            )
        )
    return result


def _one(found: dict[str, list[str]], key: str) -> str | None:
    values = found.get(key)
    return values[-1] if values else None

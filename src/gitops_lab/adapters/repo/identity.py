"""Git identities: who authored a commit, or who is about to commit in a working copy."""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass

from gitops_lab.adapters.repo.git import Git
from gitops_lab.errors import UsageError

_IDENT = re.compile(r"^\s*(?P<name>[^<>]*?)\s*(?:<(?P<email>[^<>]*)>)?\s*$")


@dataclass(frozen=True)
class Identity:
    """A Git identity: who authored a commit, or who is about to."""

    name: str
    email: str = ""

    @classmethod
    def parse(cls, text: str) -> Identity:
        """``Name <email>`` or ``Name``."""
        found = _IDENT.match(text or "")
        if not found:
            raise UsageError(f"{text!r} is not a Git identity", fix="write it as `Name <email>` or `Name`")
        return cls(" ".join(found.group("name").split()), (found.group("email") or "").strip())

    def same_person(self, other: Identity) -> bool:
        """Same email when both have one, else the same name (case-insensitive)."""
        if self.email and other.email:
            return self.email.casefold() == other.email.casefold()
        return self.name.casefold() == other.name.casefold()

    def matches(self, entry: str) -> bool:
        """Whether a name from gates.yaml or a trailer names this identity (its name, email, or both)."""
        wanted = " ".join(entry.split()).casefold()
        return wanted in {self.name.casefold(), self.email.casefold(), str(self).casefold()} and bool(wanted)

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


def git_identity(git: Git) -> Identity:
    """Who is acting: the author git would record in this working copy (name and email)."""
    ident = git.run("var", "GIT_AUTHOR_IDENT", check=False).stdout.strip()
    found = re.match(r"^(?P<who>.*>)\s+\d+\s+[-+]\d{4}$", ident)
    if found:
        return Identity.parse(found.group("who"))
    return Identity(git_user(git))


def git_user(git: Git) -> str:
    """Who is acting: git's user.name in this working copy, else the login name."""
    name = git.run("config", "user.name", check=False).stdout.strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

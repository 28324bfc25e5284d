"""What a classroom needs of a Git server: one repository per learner, which only
that learner (and the instructor) may push to, and which the engines may read.

Three kinds fit: Gitea (adapters/forge/classserver.py: one organisation per class,
in the class's own Gitea in the cluster), a server that serves a folder of bare repositories over smart
HTTP (folder.py: gitops-lab's own server.py run on a host, or any
`git http-backend`), and a server in the cluster (clusterclass.py), which
runs the same server.py as `up`'s, one per class.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.gitserver.credentials import Credentials, GitServerCredentials
from gitops_lab.adapters.gitserver.incluster import GitServerEndpoints, auth_line


@dataclass(frozen=True)
class RepoGrant:
    """A repository and the one learner who may push to it (a learner has two: their lab repository and
    their platform repository, classroom/tenant.py ``learner_grants``)."""

    repository: str
    writer: Credentials


# Class-wide users: the writer is the instructor (pushes to every repository),
# the reader is the engines' (fetches every one).
ClassCredentials = GitServerCredentials


class GitServer(abc.ABC):
    """A Git server that holds a class's repositories."""

    kind: str
    # Whether the server itself refuses a push with another learner's credentials.
    enforces_access: bool
    # Told what a long step waits for (starting a server).
    on_progress: Callable[[str], None] | None = None

    @abc.abstractmethod
    def url(self) -> str:
        """Where learners and the CLI reach the repositories: ``<url>/<repository>.git``."""

    @abc.abstractmethod
    def describe(self) -> str:
        """What kind of server it is and where it keeps the repositories, in words."""

    @abc.abstractmethod
    def endpoints(self, repository: str) -> GitServerEndpoints:
        """The URLs of ``repository``: for people and the CLI, and for the engines (``cluster_url``)."""

    @abc.abstractmethod
    def provision(self, grants: list[RepoGrant], users: ClassCredentials) -> list[str]:
        """Make every repository exist and let only its learner (and the instructor) push to it.

        ``grants`` is the whole class: learners not in it lose their access.
        Returns what changed, in words.
        """

    @abc.abstractmethod
    def remove(self, repositories: list[str]) -> list[str]:
        """Delete ``repositories``; returns the ones that were there."""

    def forge(self) -> tuple[str, Path] | None:
        """A forge's address and the file keeping its accounts (for peer review), or None: a plain Git server."""
        return None

    def retire(self, users: ClassCredentials) -> list[str]:
        """The class is gone: keep only the instructor and the engines (in-cluster: the server goes).
        Returns what changed, in words."""
        return self.provision([], users) if self.enforces_access else []


def users_file(grants: list[RepoGrant], users: ClassCredentials) -> str:
    """The users file of gitops-lab's server.py for a class (see manifests/gitserver/server.py).

    One line a learner, naming every repository granted to them: server.py keeps one entry a user,
    so a second line of the same user would take the first one's repositories away."""
    lines = [auth_line(users.writer, "write"), auth_line(users.reader, "read")]
    repositories: dict[str, list[str]] = {}
    writers: dict[str, Credentials] = {}
    for grant in grants:
        writers.setdefault(grant.writer.username, grant.writer)
        repositories.setdefault(grant.writer.username, []).append(grant.repository)
    for username in sorted(writers, key=lambda u: min(repositories[u])):
        lines.append(auth_line(writers[username], "write", tuple(sorted(repositories[username]))))
    return "\n".join(lines) + "\n"

"""A Git server gitops-lab does not run: an empty repository at a URL the cluster can reach."""

from __future__ import annotations

from dataclasses import dataclass

from gitops_lab.adapters.gitserver.lab import LabGitServer, LabRepository
from gitops_lab.adapters.repo.git import GitAuth
from gitops_lab.adapters.repo.platform import platform_remote_beside


@dataclass
class ExternalGitServer(LabGitServer):
    url: str
    # The URL the engines fetch from, when they reach the server by another address.
    engine_url: str | None = None
    # One login for the CLI's pushes and the engines' fetches (None: the server asks for none).
    auth: GitAuth | None = None

    def repository(self) -> LabRepository:
        return LabRepository(
            self.url,
            self.engine_url or self.url,
            reader=self.auth,
            writer=self.auth,
            platform_url=platform_remote_beside(self.url),
            platform_optional=True,
        )

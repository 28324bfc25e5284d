"""What `up` needs of a Git server: the one repository of a lab environment, served to
this machine (the CLI and the learner push there) and to the engines (they fetch).

Two servers fit: the in-cluster server `up` starts on kind (incluster.py), and
an external server that already holds an empty repository (external.py).
`lab_git_server` in this package chooses one.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitops_lab.adapters.repo.git import GitAuth
from gitops_lab.deadline import Deadline

if TYPE_CHECKING:
    from gitops_lab.kube.client import Kube


#: An engine's ``push_webhook``: given the forge's webhook secret, (where to send pushes or None, what changed).
PushWebhook = Callable[[str], tuple[str | None, list[str]]]


@dataclass(frozen=True)
class LabRepository:
    """Where the lab repository is reached, and as whom."""

    host_url: str  # the CLI and the learner push here
    engine_url: str  # the engines fetch here
    reader: GitAuth | None = None  # the engines' login
    writer: GitAuth | None = None  # the CLI's own pushes
    # The platform repository (ml-platform-pipelines) beside it, when the server holds one.
    platform_url: str | None = None
    # True where gitops-lab does not run the server: `up` seeds the platform repository only if
    # someone made it (an empty repository beside the lab's), else the CI-templates lab says how.
    platform_optional: bool = False
    # A forge (Gitea) holds it: its URL and the 0600 file of its accounts (forge/seed.py). Prod is then
    # promoted by pull request, as after `repo init --forge-url --forge-credentials`.
    forge_url: str | None = None
    forge_credentials: str | None = None


class LabGitServer(abc.ABC):
    """A Git server `up` serves the lab repository from."""

    def start_title(self, deadline: Deadline) -> str | None:
        """The status line of `start`; None when there is nothing to start."""
        return None

    def start(self, kube: Kube, deadline: Deadline, on_progress: Callable[[str], None]) -> list[str]:
        """Make the server run and answer; returns what changed, in words."""
        return []

    @abc.abstractmethod
    def repository(self) -> LabRepository:
        """The lab repository's URLs and credentials."""

    def protect(self, kube: Kube, push_webhook: PushWebhook) -> list[str]:
        """After the lab's first commit: what the server guards main with, and a push webhook to the engine
        (``push_webhook(secret)`` makes the engine take them: its URL, or None, and what changed); what
        changed, in words. A plain Git server has neither."""
        return []

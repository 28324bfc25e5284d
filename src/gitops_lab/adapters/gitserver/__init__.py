"""Git servers.

For `up` (lab.py): the in-cluster server on kind (incluster.py) or an external
URL (external.py), chosen by ``lab_git_server``. For classrooms (base.py):
one repository per learner, on the in-cluster server or a served folder (folder.py). The
credentials `up` keeps for the in-cluster server, which every command reads: credentials.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitops_lab.adapters.gitserver.lab import LabGitServer
    from gitops_lab.adapters.repo.git import GitAuth


GIT_SERVERS = ("builtin", "gitea")


def lab_git_server(
    env_name: str,
    url: str | None = None,
    engine_url: str | None = None,
    auth: GitAuth | None = None,
    kind: str = "builtin",
) -> LabGitServer:
    """An external server when ``url`` is given (``auth``: the login of the CLI and the engines there),
    else the in-cluster server of ``env_name``: gitops-lab's own (``builtin``) or Gitea (``gitea``)."""
    # Start-up: the servers load YAML and the Kubernetes client; every command reads the credentials module
    # beside them (credentials.py), which must not bring them along through this package.
    from gitops_lab.adapters.forge.incluster import GiteaGitServer
    from gitops_lab.adapters.gitserver.external import ExternalGitServer
    from gitops_lab.adapters.gitserver.incluster import InClusterGitServer

    if url:
        return ExternalGitServer(url, engine_url, auth)
    if kind == "gitea":
        return GiteaGitServer(env_name)
    return InClusterGitServer(env_name)

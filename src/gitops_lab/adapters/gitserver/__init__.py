"""Git servers.

For `up` (lab.py): the in-cluster server on kind (incluster.py) or an external
URL (external.py), chosen by ``lab_git_server``. For classrooms (base.py):
one repository per learner, on the in-cluster server or a served folder (folder.py).
"""

from __future__ import annotations

from gitops_lab.adapters.gitserver.lab import LabGitServer
from gitops_lab.adapters.repo.git import GitAuth


def lab_git_server(
    env_name: str, url: str | None = None, engine_url: str | None = None, auth: GitAuth | None = None
) -> LabGitServer:
    """An external server when ``url`` is given (``auth``: the login of the CLI and the engines there),
    else the in-cluster server of ``env_name``."""
    if url:
        from gitops_lab.adapters.gitserver.external import ExternalGitServer

        return ExternalGitServer(url, engine_url, auth)
    from gitops_lab.adapters.gitserver.incluster import InClusterGitServer

    return InClusterGitServer(env_name)

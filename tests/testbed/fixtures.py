"""Session-scoped pytest fixtures of the testbed (registered by tests/conftest.py's pytest_plugins):

- ``testbed_cluster``  -> Cluster: .kubeconfig, .server, .logs_dir, .check_health()
- ``testbed_git``      -> GitHttpServer (tests/helpers/gitservers.py): .base_url, .root, .create_repo(name) -> clone URL
- ``testbed_flux``     -> Flux: .namespace ("flux-system"), .check_health(), .restart(name)
- ``testbed_flux_notification`` -> the same Flux, with notification-controller up: .receiver_url (Receivers)
- ``testbed_argocd``   -> ArgoCD: .namespace ("argocd"), .check_health(), .restart(name)
- ``testbed_argocd_server`` -> the same ArgoCD, with argocd-server up: .server_url (plain HTTP, /api/webhook)
- ``testbed_gitea``    -> Gitea: .url, .cli(), .root, .started_in, .check_health()
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable


import pytest
from helpers.gitservers import GitHttpServer, start_forge

from .binaries import FORGE_ONLY, missing_reason
from .cluster import Cluster, start_cluster
from .engines import ArgoCD, Flux, start_argocd, start_flux
from .forge import Gitea
from .processes import ALL_PROCS, KEEP_ENV, TestbedError, keep


SESSION: dict[str, Any] = {}


def _skip_if_missing(only: frozenset[str] | None = None) -> None:
    reason = missing_reason(only)
    if reason:
        pytest.skip(reason)


def _finish(name: str, obj, problems_fn) -> None:
    with contextlib.suppress(Exception):
        SESSION.setdefault("rss", {}).update(obj.rss())
    if keep():
        return
    problems = problems_fn()
    if problems:
        raise TestbedError(f"{name} teardown left things behind: {'; '.join(problems)}")


@pytest.fixture(scope="session")
def testbed_workdir() -> Iterable[Path]:
    d = Path(tempfile.mkdtemp(prefix="gitops-lab-testbed-"))
    SESSION["workdir"] = d
    yield d
    if keep():
        return
    # keep logs/ for a look after the run; drop the data (etcd, storage, repos)
    for child in d.iterdir():
        if child.name != "logs":
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()


@pytest.fixture(scope="session")
def testbed_cluster(testbed_workdir: Path) -> Iterable[Cluster]:
    """A running control plane with kwok nodes. See Cluster."""
    _skip_if_missing()
    c = start_cluster(testbed_workdir)
    SESSION["cluster"] = c
    yield c
    if keep():
        msg = (
            f"{KEEP_ENV} set: the testbed is left running (the Git server stopped with pytest).\n"
            f"  export KUBECONFIG={c.kubeconfig}\n  server {c.server}\n  logs {c.logs_dir}\n"
            f"  stop it with: kill -- {' '.join('-' + str(p.pid) for p in ALL_PROCS if p.alive())}\n"
        )
        SESSION["keep_message"] = msg  # printed in the terminal summary
        (testbed_workdir / "KEEP.txt").write_text(msg)
        return
    _finish("testbed_cluster", c, c.stop)


@pytest.fixture(scope="session")
def testbed_git(testbed_workdir: Path) -> Iterable[GitHttpServer]:
    """Smart-HTTP Git server on loopback. .create_repo(name) -> clone URL."""
    _skip_if_missing()
    logs = testbed_workdir / "logs"
    logs.mkdir(exist_ok=True)
    g = GitHttpServer(testbed_workdir / "git", log_path=logs / "git-http.log")
    yield g
    if not keep():
        g.stop()


@pytest.fixture(scope="session")
def testbed_flux(testbed_cluster: Cluster) -> Iterable[Flux]:
    """Flux source-controller + kustomize-controller on the testbed cluster."""
    f = start_flux(testbed_cluster)
    yield f
    _finish("testbed_flux", f, f.stop)


@pytest.fixture(scope="session")
def testbed_flux_notification(testbed_flux: Flux) -> Flux:
    """``testbed_flux`` plus notification-controller (its receiver on loopback: ``.receiver_url``);
    stopped with the others."""
    testbed_flux.start_notification()
    return testbed_flux


@pytest.fixture(scope="session")
def testbed_argocd(testbed_cluster: Cluster) -> Iterable[ArgoCD]:
    """Argo CD redis + repo-server + application-controller on the testbed cluster."""
    a = start_argocd(testbed_cluster)
    yield a
    _finish("testbed_argocd", a, a.stop)


@pytest.fixture(scope="session")
def testbed_argocd_server(testbed_argocd: ArgoCD) -> ArgoCD:
    """``testbed_argocd`` plus argocd-server (insecure, loopback): ``.server_url``; stopped with the others.

    Set webhook secrets in argocd-secret before asking for it: a change afterwards makes the
    server restart itself, and a delivery during that restart is refused."""
    testbed_argocd.start_server()
    return testbed_argocd


@pytest.fixture(scope="session")
def testbed_gitea(testbed_workdir: Path) -> Iterable[Gitea]:
    """Gitea on loopback (SQLite in the session's temp folder), no accounts yet. See testbed/forge.py.

    One Gitea serves the whole session: each test module names its own accounts (learner,
    reviewers, admin, engine), or a module that runs later finds them made with other passwords.
    """
    _skip_if_missing(FORGE_ONLY)
    g = start_forge(testbed_workdir / "gitea", testbed_workdir / "logs")
    SESSION["gitea_started_in"] = g.started_in
    yield g
    _finish("testbed_gitea", g, g.stop)

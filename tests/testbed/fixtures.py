"""Session-scoped pytest fixtures of the testbed (registered by tests/conftest.py's pytest_plugins):

- ``testbed_cluster``  -> Cluster: .kubeconfig, .server, .logs_dir, .check_health()
- ``testbed_git``      -> GitServer: .base_url, .root, .create_repo(name) -> clone URL
- ``testbed_flux``     -> Flux: .namespace ("flux-system"), .check_health(), .restart(name)
- ``testbed_argocd``   -> ArgoCD: .namespace ("argocd"), .check_health(), .restart(name)
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Iterable


import pytest

from .binaries import missing_reason
from .cluster import Cluster, start_cluster
from .engines import ArgoCD, Flux, start_argocd, start_flux
from .gitserver import GitServer
from .processes import ALL_PROCS, KEEP_ENV, TestbedError, keep


SESSION: dict[str, object] = {}


def _skip_if_missing() -> None:
    reason = missing_reason()
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
    _skip_if_missing()
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
def testbed_git(testbed_workdir: Path) -> Iterable[GitServer]:
    """Smart-HTTP Git server on loopback. .create_repo(name) -> clone URL."""
    logs = testbed_workdir / "logs"
    logs.mkdir(exist_ok=True)
    g = GitServer(testbed_workdir / "git", log_path=logs / "git-http.log").start()
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
def testbed_argocd(testbed_cluster: Cluster) -> Iterable[ArgoCD]:
    """Argo CD redis + repo-server + application-controller on the testbed cluster."""
    a = start_argocd(testbed_cluster)
    yield a
    _finish("testbed_argocd", a, a.stop)

"""The end-to-end tests' shared set-up: one engine on the testbed, an empty
repository on the loopback Git server, the CLI in-process, and a clean cluster
afterwards (engines never fight over the lab namespaces)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import pytest

from .cluster_cleanup import cleanup

if TYPE_CHECKING:
    from testbed.cluster import Cluster


@dataclass
class EngineOnTestbed:
    engine: str
    url: str
    cli: Callable
    cluster: "Cluster"

    def cluster_apps(self):
        """An AppsV1Api on the testbed (a new client each call)."""
        from kubernetes import client

        return client.AppsV1Api(self.cluster.api_client())

    def up(self, *extra: str):
        return self.cli(
            "up",
            "--provider",
            "existing",
            "--kubeconfig",
            self.cluster.kubeconfig,
            "--engine",
            self.engine,
            "--engine-install",
            "external",
            "--git-url",
            self.url,
            "--timeout",
            "240",
            *extra,
        )


@pytest.fixture(params=["argocd", "flux"])
def engine_on_testbed(request, testbed_cluster, testbed_git, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from gitops_lab.cli import main
    from testbed.binaries import bin_dir

    engine = request.param
    request.getfixturevalue(f"testbed_{engine}")
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GITOPS_LAB_REPO", raising=False)
    monkeypatch.delenv("GITOPS_LAB_LABS_DIR", raising=False)
    # The policy gate renders overlays with the testbed's kustomize when none is installed.
    monkeypatch.setenv("PATH", f"{os.environ['PATH']}{os.pathsep}{bin_dir()}")
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    # The platform repository beside the lab's, as a Git server you run would hold it (`up` seeds it).
    testbed_git.create_repo("ml-platform-pipelines")
    yield EngineOnTestbed(engine, testbed_git.create_repo(f"lab-{engine}-{uuid.uuid4().hex[:6]}"), cli, testbed_cluster)
    cleanup(testbed_cluster, engine)

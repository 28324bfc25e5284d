"""Every shipped lab end to end on the testbed, for Argo CD and for Flux.

`gitops-lab lab test --all --engine E --junit FILE` must pass: for each step,
setup, the check fails, the solution runs, the check passes; then the lab is
reset and its start state verified. The JUnit file must list every step of
every lab (and each lab's reset) as a passed testcase.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner

from gitops_lab.cli import main
from gitops_lab.labs.loader import discover, load_lab
from gitops_lab.resources import labs_dir

from .cluster_cleanup import cleanup

pytestmark = pytest.mark.testbed


@pytest.fixture(params=["argocd", "flux"])
def lab_environment(request, testbed_cluster, testbed_git, tmp_path, monkeypatch):
    engine = request.param
    request.getfixturevalue(f"testbed_{engine}")
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GITOPS_LAB_REPO", raising=False)
    monkeypatch.delenv("GITOPS_LAB_LABS_DIR", raising=False)
    if not shutil.which("kustomize") and not os.environ.get("GITOPS_LAB_KUSTOMIZE"):
        from testbed import fixtures  # the policy gate renders overlays with the testbed's kustomize

        monkeypatch.setenv("PATH", f"{fixtures.bin_dir()}{os.pathsep}{os.environ['PATH']}")
    url = testbed_git.create_repo(f"labs-{engine}-{uuid.uuid4().hex[:6]}")
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    up = cli("up", "--provider", "existing", "--kubeconfig", testbed_cluster.kubeconfig, "--engine", engine,
             "--engine-install", "external", "--git-url", url, "--timeout", "240")
    assert up.exit_code == 0, up.output
    yield engine, cli
    cleanup(testbed_cluster, engine)


def test_every_lab_passes_and_junit_lists_every_step(lab_environment, tmp_path):
    engine, cli = lab_environment
    junit = tmp_path / f"labs-{engine}.xml"
    result = cli("lab", "test", "--all", "--engine", engine, "--junit", str(junit), "--timeout", "180",
                 "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["passed"] is True

    expected = []
    for folder in discover(labs_dir()):
        lab = load_lab(folder)
        expected += [(f"labs.{lab.id}", step.id) for step in lab.steps] + [(f"labs.{lab.id}", "reset")]
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert sorted((c.get("classname"), c.get("name")) for c in cases) == sorted(expected)
    assert not root.findall(".//failure") and not root.findall(".//skipped")
    assert {p.get("value") for p in root.findall(".//property[@name='engine']")} == {engine}

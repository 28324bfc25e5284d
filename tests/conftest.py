"""Shared pytest configuration. Keep each part in its own clearly marked section."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

# --------------------------------------------------------------------------- #
# The two test beds, registered as plugins (their fixtures and hooks).
# Testbed (issue 3): fixtures testbed_workdir, testbed_cluster, testbed_git, testbed_gitea,
# testbed_flux, testbed_argocd; skip of @pytest.mark.testbed tests when the
# testbed is not built; log tails on failure; a closing line saying whether
# e2e tests ran. Details: tests/testbed/README.md
# Kind bed (issue 9): a real kind cluster from locally built images, for the
# tests marked `kind`; fixture kind_bed; a closing line saying whether they ran.
# Details: tests/kindbed/README.md
# --------------------------------------------------------------------------- #
pytest_plugins = [
    "testbed.fixtures",
    "testbed.plugin",
    "kindbed.fixtures",
    "kindbed.plugin",
    # fixtures start_server (the model server as a process) and kind_standin (a fake kind binary)
    "helpers.modelserver_process",
    "helpers.kindstandin",
    # the closing line CI TEMPLATES E2E: whether the CI-template tests ran their tools
    "helpers.ci_templates_plugin",
]


# --------------------------------------------------------------------------- #
# Folders and markers, one source of truth: a test's folder says what it needs,
# and the marker (the beds' skips, `-m`, the closing lines) follows from it.
# tests/unit/ needs no bed. tests/unit/project/test_layout.py checks that no
# test outside these folders asks for a bed.
# --------------------------------------------------------------------------- #
FOLDER_MARKERS = {
    ("e2e", "testbed"): "testbed",
    ("e2e", "kind"): "kind",
    ("ci_templates",): "ci_templates",
    ("dockerd",): "docker",
}
TESTS = Path(__file__).resolve().parent


def marker_of(path: Path) -> str | None:
    """The marker of the test file at ``path``, from its folder under tests/ (None: a unit test)."""
    parts = path.resolve().relative_to(TESTS).parts
    for folder, marker in FOLDER_MARKERS.items():
        if parts[: len(folder)] == folder:
            return marker
    return None


@pytest.hookimpl(tryfirst=True)  # before the beds' hooks and `-m` read the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = marker_of(item.path)
        if marker:
            item.add_marker(marker)


# --------------------------------------------------------------------------- #
# Two workers (pytest-xdist; scripts/test runs `-n 2 --dist loadgroup`): every test
# that uses a bed or the private dockerd is one unit of work, so one worker runs
# them one after another as before (the beds' clusters, ports and the kind lock are
# not shared between workers), while the other worker takes the unit and
# CI-template tests beside them. The grouping is by folder, as the markers are: a
# scheduler of our own rather than xdist's `xdist_group` marks, which pytest 9.2's
# node ids no longer carry (xdist 3.8 writes the group into `_nodeid`).
# --------------------------------------------------------------------------- #
BED_GROUP = "beds"
BED_MARKERS = {"testbed", "kind", "docker"}


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    root = Path(config.rootpath)

    class BedsTogether(LoadScopeScheduling):
        """Each test its own unit of work, except the bed tests: all of them one unit, on one worker."""

        def _split_scope(self, nodeid: str) -> str:
            return BED_GROUP if marker_of(root / nodeid.split("::", 1)[0]) in BED_MARKERS else nodeid

    return BedsTogether(config, log)


# --------------------------------------------------------------------------- #
# Git core: the CLI in-process with its own state folder, and a seeded working
# copy pushed to a real bare remote. Modules may wrap `lab` (same name) to set
# a git identity of their own.
# --------------------------------------------------------------------------- #
@pytest.fixture
def cli(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gitops_lab.cli import main

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GITOPS_LAB_REPO", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def lab(tmp_path, cli):
    """(working copy, bare remote): seeded by `gitops-lab repo init --remote`."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    wc = tmp_path / "wc"
    result = cli("repo", "init", str(wc), "--remote", str(remote))
    assert result.exit_code == 0, result.output
    return wc, remote


@pytest.fixture
def local_engine(lab, tmp_path):
    """The engine's stand-in (tests/helpers/localengine.py) on ``lab``, whose commits Lee Learner makes."""
    from helpers.localengine import LocalEngine

    wc, _ = lab
    subprocess.run(["git", "-C", str(wc), "config", "user.name", "Lee Learner"], check=True)
    local = LocalEngine(wc, tmp_path)
    yield local
    local.stop()


# --------------------------------------------------------------------------- #
# Golden files (tests/helpers/golden.py): `pytest --update-goldens` rewrites
# tests/testdata/golden/ from what the commands print now; review the diff.
# --------------------------------------------------------------------------- #
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens", action="store_true", help="rewrite tests/testdata/golden/ from the commands' output"
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--update-goldens"):
        import os

        from helpers.golden import UPDATE_ENV

        os.environ[UPDATE_ENV] = "1"

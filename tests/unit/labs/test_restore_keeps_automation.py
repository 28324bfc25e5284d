"""A lab's restore of the whole tree leaves automation/ alone: the in-cluster release automation's
Deployment is the platform's (`up --release-automation`), and restoring it away would stop it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitops_lab.adapters.repo.git import Git
from gitops_lab.labs.actions.doers import restore_tree


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=Lee", "-c", "user.email=lee@example.com"]
    return subprocess.run(["git", *identity, "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_restoring_the_tree_keeps_the_automation_and_restores_the_rest(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "overlay.yaml").write_text("version: v1\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "seed")
    _git(repo, "tag", "start")
    (repo / "overlay.yaml").write_text("version: v5\n")
    (repo / "automation").mkdir()
    (repo / "automation" / "release-automation.yaml").write_text("kind: Deployment\n")
    (repo / "notes.md").write_text("mine\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "work")

    assert restore_tree(Git(repo), "start", ["."], "restore")
    assert (repo / "overlay.yaml").read_text() == "version: v1\n"
    assert not (repo / "notes.md").exists()  # everything else is the start's again
    assert (repo / "automation" / "release-automation.yaml").read_text() == "kind: Deployment\n"
    assert _git(repo, "status", "--porcelain") == ""

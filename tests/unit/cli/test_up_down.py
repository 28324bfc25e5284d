"""`up` and `down` as a new user meets them on a machine without a cluster:
fail fast without Docker leaving nothing behind, refuse bad option mixes with
one line, and `down` keeps a backup that holds every commit and uncommitted work."""

from __future__ import annotations

import subprocess

import pytest
from helpers.gitutil import git

from gitops_lab.state import state_root


@pytest.fixture
def no_docker(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


def test_up_without_docker_fails_fast_with_one_line_and_leaves_nothing(cli, no_docker, kind_standin, tmp_path):
    result = cli("up")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()[-1:]
    # The problem (which socket), why that one (DOCKER_HOST, as the user spelled it) and the fix.
    socket = f"unix://{tmp_path}/no-docker.sock"
    # (Another preflight problem of this machine, such as a port a running kind cluster holds, adds
    # "(and N more problem(s): run `gitops-lab doctor`)" after the first one; the first stays this.)
    assert line.startswith(f"error: Docker is not reachable: no Docker daemon socket at {socket}"), line
    assert f"; DOCKER_HOST is set to {socket}: start that daemon, or unset DOCKER_HOST; install Docker" in line, line
    # Nothing was created: no kind cluster, no state, no working copy.
    assert ["create", "cluster"] not in [call[:2] for call in kind_standin.calls]
    assert not state_root().exists() or not any(state_root().rglob("*"))


@pytest.mark.parametrize(
    "args,words",
    [
        (["up", "--provider", "existing"], "--git-url is required with --provider existing"),
        (["up", "--provider", "existing", "--git-url", "file:///tmp/lab.git"], "engines cannot fetch from"),
        (["up", "--git-url", "https://git.example.com/lab.git"], "--git-url is for --provider existing"),
        (["up", "--engine-install", "external"], "--engine-install external cannot work there"),
        (["up", "--registry-mirror", "docker.io"], "is not REGISTRY=URL"),
    ],
)
def test_bad_up_options_are_one_line_before_anything_happens(cli, args, words):
    result = cli(*args)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert words in line
    assert not state_root().exists() or not any(state_root().rglob("*"))


def test_down_keeps_a_bundle_with_every_commit_and_the_uncommitted_work(cli, lab, tmp_path):
    wc, remote = lab
    (wc / "notes.md").write_text("my unfinished notes\n")
    git(wc, "commit", "--quiet", "--allow-empty", "-m", "A commit only the learner has")
    learner_head = git(wc, "rev-parse", "HEAD")
    result = cli("down", "--output", "json")
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads(result.stdout)
    bundle = summary["backup"]
    home = state_root() / "gitops-lab"
    assert [p.name for p in home.iterdir()] == ["backups"]
    restored = tmp_path / "restored"
    subprocess.run(["git", "clone", "--quiet", bundle, str(restored)], check=True)
    assert git(restored, "rev-parse", "HEAD") == learner_head
    refs = git(restored, "ls-remote", bundle, "refs/gitops-lab/backup/*").split()
    uncommitted = [r for r in refs if r.endswith("-uncommitted-at-down")]
    assert uncommitted, refs
    git(restored, "fetch", "--quiet", bundle, f"{uncommitted[0]}:refs/uncommitted")
    assert git(restored, "show", "refs/uncommitted:notes.md") == "my unfinished notes"
    assert git(restored, "rev-parse", "refs/uncommitted^") == learner_head


def test_down_when_the_kind_cluster_is_already_gone(cli, kind_standin):
    kind_standin.script(version=[{"recording": "version"}], get_clusters=[{"recording": "get-clusters-none"}])
    first = cli("down")
    assert first.exit_code == 0, first.output
    assert "is down" in first.stdout
    assert ["delete", "cluster"] not in [call[:2] for call in kind_standin.calls]
    again = cli("down")
    assert again.exit_code == 0

"""`class create --git-server gitea`'s options, record and in-cluster objects, without a cluster or a Gitea
(the provisioning itself: tests/e2e/testbed/test_class_gitea_testbed.py on the testbed's Gitea)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_lab.adapters.forge.classforge import class_organisation
from gitops_lab.adapters.forge.classserver import ClusterGiteaClassGitServer
from gitops_lab.classroom.record import ClassRecord, git_server_record, load_class
from gitops_lab.classroom.reviews import class_forge
from gitops_lab.errors import UsageError


def test_gitea_options_are_recorded_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    git = git_server_record("gitea", None, "http://gitea.class.example", None, 30090, None)
    assert (git.kind, git.forge_url, git.node_port) == ("gitea", "http://gitea.class.example", 30090)
    ClassRecord("c1", "flux", None, None, git, ["ana"]).save()
    assert load_class("c1").git == git
    assert class_forge(load_class("c1")) is None  # no forge until `class create` provisioned it


@pytest.mark.parametrize("flag", ["--git-root", "--git-auth-file", "--git-engine-base-url"])
def test_gitea_refuses_the_flags_of_a_server_of_your_own(flag):
    values = {"--git-root": "/srv/git", "--git-auth-file": "/srv/users", "--git-engine-base-url": "http://x"}
    with pytest.raises(UsageError) as refused:
        git_server_record(
            "gitea", values.get("--git-root"), None, values.get("--git-engine-base-url"), None,
            values.get("--git-auth-file"),
        )  # fmt: skip
    assert flag in refused.value.message and "the class's Gitea" in refused.value.message


def test_the_class_gitea_runs_in_the_class_namespace_on_its_node_port():
    server = ClusterGiteaClassGitServer("c1", Path("/nonexistent/forge-credentials.json"), "http://10.0.0.5:30081")
    assert server.url() == "http://10.0.0.5:30081/c1"
    urls = server.endpoints("ana")
    assert urls.host_url == "http://10.0.0.5:30081/c1/ana.git"
    assert urls.cluster_url == "http://gitea.c1-class-git.svc.cluster.local:3000/c1/ana.git"
    assert server.forge() == ("http://10.0.0.5:30081", Path("/nonexistent/forge-credentials.json"))


def test_the_class_gitea_objects(tmp_path):
    server = ClusterGiteaClassGitServer("c1", tmp_path / "forge-credentials.json", node_port=30090)
    objects = server.manifests()
    assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in objects} == {"c1-class-git"}
    assert all(o["metadata"]["labels"]["gitops-lab.io/class"] == "c1" for o in objects)
    [service] = [o for o in objects if o["kind"] == "Service"]
    assert service["spec"]["ports"][0]["nodePort"] == 30090
    assert (tmp_path / "forge-secret-key").stat().st_mode & 0o777 == 0o600
    assert server.manifests() == objects  # the kept secret key: the same objects again


@pytest.mark.parametrize("name", ["a..b", "-c", "x" * 41, "c/d"])
def test_a_class_name_gitea_cannot_take_as_an_organisation_is_refused(name):
    with pytest.raises(UsageError, match="Gitea organisation"):
        class_organisation(name)

"""The providers `up` and `down` choose once: cluster (kind, existing), Git server
(in-cluster, external), and what an engine adapter knows about its UI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_lab.adapters.cluster import PROVIDERS, provider_for
from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.gitserver import lab_git_server
from gitops_lab.adapters.repo.git import GitAuth
from gitops_lab.errors import UsageError
from gitops_lab.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState, state_root


def test_an_existing_cluster_is_reached_as_given_and_never_deleted(tmp_path):
    cluster = provider_for("existing", "lab", tmp_path, kubeconfig="/k/config", context="prod-cluster")
    info = cluster.ensure(Reporter())
    assert (info.kubeconfig, info.context, info.created) == (Path("/k/config"), "prod-cluster", False)
    assert not cluster.runs_here and cluster.ports is None
    assert cluster.delete(Reporter()) is False
    assert "left as it is" in cluster.kept_note


def test_without_a_kubeconfig_the_existing_cluster_is_the_clients_default(tmp_path):
    info = provider_for("existing", "lab", tmp_path).ensure(Reporter())
    assert (info.kubeconfig, info.context) == (None, None)


def test_kind_runs_here_and_maps_the_lab_ports(tmp_path):
    cluster = provider_for("kind", "lab", tmp_path, registry_mirrors={"docker.io": "http://mirror:5000"})
    assert cluster.runs_here and cluster.ports is not None and cluster.ports.ui_host == 8443
    assert cluster.kept_note == ""


def test_every_provider_named_on_the_command_line_has_a_class_and_no_other(tmp_path):
    assert {provider_for(name, "lab", tmp_path).name for name in PROVIDERS} == set(PROVIDERS)
    with pytest.raises(UsageError) as err:
        provider_for("minikube", "lab", tmp_path)
    assert "unknown cluster provider 'minikube'" in err.value.message


def test_down_leaves_an_existing_cluster_and_says_so(cli):
    EnvironmentState(name="gitops-lab", provider="existing", engine="flux", kubeconfig="/nowhere/config").save()
    result = cli("down", "--output", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["cluster_deleted"] is False
    assert any("the existing cluster was left as it is" in note for note in summary["notes"])
    assert [p.name for p in (state_root() / "gitops-lab").iterdir()] == []


def test_an_external_git_server_serves_the_given_urls_and_the_engines_login():
    bot = GitAuth("bot", "s3cret")
    server = lab_git_server("lab", "https://git.example.com/lab.git", None, bot)
    repo = server.repository()
    assert (repo.host_url, repo.engine_url) == ("https://git.example.com/lab.git",) * 2
    assert repo.reader == repo.writer == bot  # the one login the command was given
    assert server.start_title(Deadline(60)) is None  # nothing to start: `up` shows no line for it
    assert "s3cret" not in repr(repo)
    inside = lab_git_server("lab", "http://localhost:3000/lab.git", "http://gitea.git:3000/lab.git").repository()
    assert (inside.host_url, inside.engine_url) == ("http://localhost:3000/lab.git", "http://gitea.git:3000/lab.git")


def test_the_in_cluster_git_server_lets_the_cli_push_as_writer_and_engines_fetch_as_reader(cli):
    repo = lab_git_server("lab").repository()
    assert repo.host_url == "http://localhost:8180/lab.git"
    assert repo.engine_url == "http://gitserver.gitops-lab-git.svc.cluster.local:8080/lab.git"
    assert repo.writer is not None and repo.writer.username == "learner"
    assert repo.reader is not None and repo.reader.username == "engine"
    assert repo.reader.password != repo.writer.password
    assert lab_git_server("lab").repository() == repo  # the credentials are kept, so a re-run reuses them


@pytest.mark.parametrize("engine,url", [("argocd", "http://localhost:8443"), ("flux", None)])
def test_the_engine_adapter_says_whether_it_serves_a_ui(engine, url):
    adapter = engine_for(engine)
    assert adapter.ui_url(8443) is None  # not exposed until asked
    adapter.serve_ui(30443)
    assert adapter.ui_url(8443) == url


def test_offline_kind_starts_from_the_node_image_docker_holds_only_by_its_tag(tmp_path):
    cluster = provider_for("kind", "lab", tmp_path)
    pinned = cluster.settings.node_image
    cluster.use_local_tags(["python:3.12"])
    assert cluster.settings.image_for_kind == pinned
    cluster.use_local_tags([pinned])
    assert cluster.settings.image_for_kind == pinned.split("@", 1)[0]

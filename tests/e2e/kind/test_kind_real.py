"""The kind provider on a real kind cluster: create, reuse, Git server, image load, delete. `pytest -m kind`.

Runs on the kind bed (tests/kindbed: kind, its node image and the lab's images
built locally, served by the bed's own dockerd), so no registry is needed; skipped
with the reason when the bed is not built. The cluster gets its own name and
ports, so a learner's lab cluster is never touched.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.cluster.kind_config import KindSettings
from gitops_lab.adapters.cluster.kind_provider import KindCluster
from gitops_lab.reporter import PlainReporter
from helpers.gitutil import identity_env

NAME = "gitops-lab-pytest"
PORTS = LabPorts(git_host=18180, ui_host=18443)


@pytest.fixture(scope="module")
def cluster(kind_bed, tmp_path_factory):
    saved = dict(os.environ)
    os.environ.update(kind_bed.env())
    settings = KindSettings(name=NAME, ports=PORTS)
    # the bed's node image is local, so Docker knows it by its tag only (as after `docker load`)
    settings.local_node_image = settings.node_image.split("@", 1)[0]
    provider = KindCluster(settings, tmp_path_factory.mktemp("kind-state"))
    kind_bed.clusters.add(NAME)
    reporter = PlainReporter()
    try:
        info = provider.ensure(reporter)
        yield provider, info
        provider.delete(reporter)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_created_cluster_is_reachable_with_its_own_kubeconfig(cluster):
    from kubernetes import client, config

    provider, info = cluster
    api = config.new_client_from_config(config_file=str(info.kubeconfig), context=info.context)
    nodes = client.CoreV1Api(api).list_node().items
    assert [n.metadata.name for n in nodes] == [f"{NAME}-control-plane"]
    assert info.kubeconfig.read_text().count("server: https://127.0.0.1:") == 1


def test_second_ensure_reuses_it(cluster):
    provider, _ = cluster
    again = provider.ensure(PlainReporter())
    assert again.created is False


def test_gitserver_runs_and_takes_a_push_through_the_port_mapping(cluster, tmp_path, monkeypatch):
    from gitops_lab.adapters.gitserver.incluster import GitServerSettings, InClusterGitServer
    from gitops_lab.kube.apply import Applier
    from gitops_lab.kube.client import connect

    from gitops_lab.adapters.gitserver.incluster import image_references
    from gitops_lab.adapters.images import LabImage, load_images, pull_images

    provider, info = cluster
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    # no registry here: the Git server's image goes in the way `--preload` puts it there
    images = [LabImage(r, "gitserver") for r in image_references()]
    pull_images(images, PlainReporter())
    load_images(images, provider, PlainReporter(), tmp_path)
    server = InClusterGitServer("pytest", GitServerSettings(ports=PORTS))
    Applier(connect(str(info.kubeconfig), info.context)).apply_all(server.manifests())

    def rollout(verb: str, *extra: str) -> None:
        kubectl = ["kubectl", "--kubeconfig", str(info.kubeconfig), "-n", server.settings.namespace]
        subprocess.run([*kubectl, "rollout", verb, "deployment/gitserver", *extra], check=True)

    rollout("status", "--timeout=300s")
    url = server.host_url_with_credentials()
    work = tmp_path / "work"
    env = identity_env()
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, env=env)
    (work / "README.md").write_text("hi\n")
    subprocess.run(["git", "-C", str(work), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "first"], check=True, env=env)
    from gitops_lab.deadline import Deadline

    server.wait_reachable_from_host(Deadline(120))  # the NodePort answers once kube-proxy has programmed it
    subprocess.run(["git", "-C", str(work), "push", "-q", url, "main"], check=True, env=env)
    # The pod restarts on the same volume and the push is still there.
    rollout("restart")
    rollout("status", "--timeout=300s")
    server.wait_reachable_from_host(Deadline(120))
    out = subprocess.run(["git", "ls-remote", url, "main"], capture_output=True, text=True, env=env, check=True)
    head = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == head.stdout.strip()


def test_loaded_images_are_found_in_the_node_by_their_pinned_reference(cluster, tmp_path):
    from gitops_lab.adapters.gitserver.incluster import image_references
    from gitops_lab.adapters.images import LabImage, load_images, pull_images

    provider, _ = cluster
    refs = image_references()
    reporter = PlainReporter()
    pull_images([LabImage(r, "gitserver") for r in refs], reporter)
    load_images([LabImage(r, "gitserver") for r in refs], provider, reporter, tmp_path)
    for ref in refs:
        found = subprocess.run(
            ["docker", "exec", provider.node_name, "crictl", "inspecti", "-q", ref], capture_output=True, text=True
        )
        assert found.returncode == 0, f"{ref} not resolvable in the node: {found.stderr}"

"""Contract tests of the kind provider against a stand-in `kind` on PATH.

The stand-in records its arguments and plays back outputs recorded from a real
kind v0.30.0 (tests/testdata/kind/). Where kind would write a kubeconfig
(create, export), the stand-in writes one shaped like kind's.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gitops_lab.adapters.cluster.kind_binary import find_kind
from gitops_lab.adapters.cluster.kind_config import KindSettings
from gitops_lab.adapters.cluster.kind_provider import KindCluster
from gitops_lab.errors import ClusterError, PreflightError
from gitops_lab.reporter import PlainReporter, Reporter


def provider(tmp_path, **settings) -> KindCluster:
    return KindCluster(KindSettings(**settings), tmp_path / "state")


def test_kind_on_path_with_the_pinned_version_is_used(kind_standin, tmp_path):
    found = find_kind(Reporter(), version="v0.30.0")
    assert found.source == "PATH"
    assert found.version == "v0.30.0"
    assert found.path == Path(os.environ["PATH"].split(os.pathsep)[0]) / "kind"


def test_create_when_no_cluster_exists(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-none"}],
        create_cluster=[{"rc": 0, "write_kubeconfig": True}],
    )
    cluster = provider(tmp_path)
    info = cluster.ensure(Reporter())
    assert info.created is True
    assert info.context == "kind-gitops-lab"
    assert info.kubeconfig == tmp_path / "state" / "kubeconfig"
    assert "kind-gitops-lab" in info.kubeconfig.read_text()
    assert stat.S_IMODE(info.kubeconfig.stat().st_mode) == 0o600
    create = [c for c in kind_standin.calls if c[:2] == ["create", "cluster"]][0]
    assert create == [
        "create",
        "cluster",
        "--name",
        "gitops-lab",
        "--config",
        str(cluster.config_file),
        "--kubeconfig",
        str(cluster.kubeconfig),
    ]
    # The cluster config given to kind is the rendered one, pinned by digest.
    assert "@sha256:" in cluster.config_file.read_text()


def test_existing_cluster_is_reused_and_its_kubeconfig_written_to_the_state_dir(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-one"}],
        export_kubeconfig=[{"rc": 0, "write_kubeconfig": True}],
    )
    info = provider(tmp_path).ensure(Reporter())
    assert info.created is False
    assert ["create", "cluster"] not in [c[:2] for c in kind_standin.calls]
    export = [c for c in kind_standin.calls if c[:2] == ["export", "kubeconfig"]][0]
    assert export == ["export", "kubeconfig", "--name", "gitops-lab", "--kubeconfig", str(info.kubeconfig)]


def test_recreate_deletes_then_creates(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-one"}],
        delete_cluster=[{"recording": "delete-one"}],
        create_cluster=[{"rc": 0, "write_kubeconfig": True}],
    )
    info = provider(tmp_path).ensure(Reporter(), recreate=True)
    assert info.created is True
    verbs = [tuple(c[:2]) for c in kind_standin.calls if c[0] != "version"]
    assert verbs == [("get", "clusters"), ("delete", "cluster"), ("create", "cluster")]


def test_failed_create_deletes_the_half_made_cluster(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-none"}],
        create_cluster=[{"recording": "create-pull-failed"}],
        delete_cluster=[{"recording": "delete-missing"}],
    )
    with pytest.raises(ClusterError) as err:
        provider(tmp_path).ensure(Reporter())
    assert "could not pull the node image" in err.value.message
    assert "registry-1.docker.io" in err.value.message  # Docker's own reason is kept
    assert "images pull" in err.value.fix
    verbs = [tuple(c[:2]) for c in kind_standin.calls if c[0] != "version"]
    assert verbs[-1] == ("delete", "cluster")


def test_failed_create_with_retain_keeps_the_cluster(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-none"}],
        create_cluster=[{"recording": "create-pull-failed"}],
    )
    with pytest.raises(ClusterError):
        provider(tmp_path, retain=True).ensure(Reporter())
    create = [c for c in kind_standin.calls if c[:2] == ["create", "cluster"]][0]
    assert "--retain" in create
    assert ("delete", "cluster") not in [tuple(c[:2]) for c in kind_standin.calls]


def test_docker_not_running_is_a_preflight_error_naming_docker(kind_standin, tmp_path):
    kind_standin.script(version=[{"recording": "version"}], get_clusters=[{"recording": "get-clusters-no-docker"}])
    with pytest.raises(PreflightError) as err:
        provider(tmp_path).ensure(Reporter())
    assert "Docker is not reachable" in err.value.message
    assert "Cannot connect to the Docker daemon" in err.value.message
    assert "start Docker" in err.value.fix


def test_reusing_a_stopped_cluster_says_how_to_start_it(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-one"}],
        export_kubeconfig=[{"recording": "export-kubeconfig-stopped"}],
    )
    with pytest.raises(ClusterError) as err:
        provider(tmp_path).ensure(Reporter())
    assert "stopped" in err.value.message
    assert "docker start gitops-lab-control-plane" in err.value.fix
    assert "--recreate" in err.value.fix


def test_create_racing_another_create_says_to_reuse_or_recreate(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-none"}],
        create_cluster=[{"recording": "create-exists"}],
        delete_cluster=[{"recording": "delete-missing"}],
    )
    with pytest.raises(ClusterError) as err:
        provider(tmp_path).ensure(Reporter())
    assert 'already exist for a cluster with the name "gitops-lab"' in err.value.message
    assert "--recreate" in err.value.fix


def test_delete_existing_cluster_uses_the_lab_kubeconfig_only(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-one"}],
        delete_cluster=[{"recording": "delete-one"}],
    )
    cluster = provider(tmp_path)
    cluster.state_dir.mkdir(parents=True)
    cluster.kubeconfig.write_text("old")
    assert cluster.delete(Reporter()) is True
    delete = [c for c in kind_standin.calls if c[:2] == ["delete", "cluster"]]
    assert delete == [["delete", "cluster", "--name", "gitops-lab", "--kubeconfig", str(cluster.kubeconfig)]]
    assert not cluster.kubeconfig.exists()


def test_delete_when_already_gone_reports_false(kind_standin, tmp_path):
    kind_standin.script(version=[{"recording": "version"}], get_clusters=[{"recording": "get-clusters-none"}])
    assert provider(tmp_path).delete(Reporter()) is False
    assert ["delete", "cluster"] not in [c[:2] for c in kind_standin.calls]


def test_merge_kubeconfig_exports_to_the_default_kubeconfig_too(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-none"}],
        create_cluster=[{"rc": 0, "write_kubeconfig": True}],
        export_kubeconfig=[{"rc": 0}],
    )
    provider(tmp_path, merge_kubeconfig=True).ensure(Reporter())
    assert ["export", "kubeconfig", "--name", "gitops-lab"] in kind_standin.calls


def test_mirrors_are_written_as_hosts_toml_and_mounted(kind_standin, tmp_path):
    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-none"}],
        create_cluster=[{"rc": 0, "write_kubeconfig": True}],
    )
    cluster = provider(tmp_path, registry_mirrors={"docker.io": "http://host.docker.internal:5000"})
    cluster.ensure(Reporter())
    hosts = (cluster.certs_dir / "docker.io" / "hosts.toml").read_text()
    assert '[host."http://host.docker.internal:5000"]' in hosts
    assert str(cluster.certs_dir) in cluster.config_file.read_text()


def test_load_image_archive_error_is_kinds_own(kind_standin, tmp_path):
    kind_standin.script(version=[{"recording": "version"}], load_image_archive=[{"recording": "load-archive-no-nodes"}])
    with pytest.raises(ClusterError) as err:
        provider(tmp_path).load_image_archive(tmp_path / "images.tar")
    assert 'no nodes found for cluster "gitops-lab"' in err.value.message


def test_steps_are_reported(kind_standin, tmp_path):
    import io

    kind_standin.script(
        version=[{"recording": "version"}],
        get_clusters=[{"recording": "get-clusters-none"}],
        create_cluster=[{"rc": 0, "write_kubeconfig": True}],
    )
    out = io.StringIO()
    provider(tmp_path).ensure(PlainReporter(out))
    lines = [line for line in out.getvalue().splitlines() if line.startswith(("•", "✓"))]
    assert lines[0] == "• Finding kind v0.30.0 ..."
    assert lines[1].startswith("✓ Finding kind v0.30.0: using ")
    assert lines[2] == "• Creating kind cluster gitops-lab (Kubernetes v1.34.0) ..."
    assert lines[3].startswith("✓ Creating kind cluster gitops-lab (Kubernetes v1.34.0): kubeconfig ")

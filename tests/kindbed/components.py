"""The Go programs of a kind node and its component images, as testbed Components.

Built with the testbed's Builder (tests/testbed/build.py): the same wrapper
module, go.sum seeding and stamps, into the kind bed's own cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.build import Component

from kindbed.layout import load_versions


def kube_version_ldflags(k8s: str) -> list[str]:
    major, minor, _ = k8s.lstrip("v").split(".")[:3]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={k8s}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return flags


def go_components(v: dict | None = None) -> list[Component]:
    v = v or load_versions()
    node = v["kind"]["node"]
    k8s = v["kubernetes"]["version"]
    minor, patch = k8s.lstrip("v").split(".")[1:3]
    containerd = "github.com/containerd/containerd/v2"
    return [
        Component("kind", "sigs.k8s.io/kind", v["kind"]["version"], {"kind": "sigs.k8s.io/kind"}),
        Component(
            "kubernetes",
            "k8s.io/kubernetes",
            k8s,
            {
                b: f"k8s.io/kubernetes/cmd/{b}"
                for b in (
                    "kubeadm",
                    "kubelet",
                    "kubectl",
                    "kube-proxy",
                    "kube-apiserver",
                    "kube-controller-manager",
                    "kube-scheduler",
                )
            },
            ldflags=kube_version_ldflags(k8s),
            staging_version=f"v0.{minor}.{patch}",
        ),
        Component(
            "containerd",
            containerd,
            node["containerd"],
            {b: f"{containerd}/cmd/{b}" for b in ("containerd", "ctr", "containerd-shim-runc-v2")},
            ldflags=[f"-X {containerd}/version.Version={node['containerd']}"],
            # kind's base image builds containerd with the same tags
            tags=["no_aufs", "no_zfs", "no_btrfs", "no_devmapper"],
        ),
        Component(
            "crictl",
            "sigs.k8s.io/cri-tools",
            node["crictl"],
            {"crictl": "sigs.k8s.io/cri-tools/cmd/crictl"},
            ldflags=[f"-X sigs.k8s.io/cri-tools/pkg/version.Version={node['crictl']}"],
        ),
        Component("etcd", "go.etcd.io/etcd/server/v3", node["etcd"], {"etcd": "go.etcd.io/etcd/server/v3"}),
        Component("coredns", "github.com/coredns/coredns", node["coredns"], {"coredns": "github.com/coredns/coredns"}),
        Component(
            "local-path-provisioner",
            "github.com/rancher/local-path-provisioner",
            node["local_path_provisioner"],
            {"local-path-provisioner": "github.com/rancher/local-path-provisioner"},
            ldflags=[f"-X main.VERSION={node['local_path_provisioner']}"],
        ),
    ]

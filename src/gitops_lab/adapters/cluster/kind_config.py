"""The kind config: the cluster's settings, their validation and the kind Cluster config they render.

Three passes over the settings, as kind does with its own config: defaults (the
dataclass), ``validate`` (every problem at once), then ``render_config``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.errors import UsageError
from gitops_lab.versions import pinned

NODE_IMAGE_RE = re.compile(r"^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$")
CLUSTER_NAME_RE = re.compile(r"^[a-z0-9.-]+$")  # kind's own rule (validate.go)
CERTS_DIR_IN_NODE = "/etc/containerd/certs.d"
NODE_PORT_RANGE = range(30000, 32768)


@dataclass
class KindSettings:
    """What the cluster looks like. Defaults come from versions.yaml."""

    name: str = "gitops-lab"
    node_image: str = field(default_factory=lambda: pinned()["kind"]["node_image"])
    ports: LabPorts = field(default_factory=LabPorts)
    # Registry host -> mirror URL, e.g. {"docker.io": "http://host.docker.internal:5000"}.
    registry_mirrors: dict[str, str] = field(default_factory=dict)
    retain: bool = False
    merge_kubeconfig: bool = False
    # Offline, the node image as Docker holds it when only its tag is here (an
    # archive load drops the registry digest): kind is given this instead.
    local_node_image: str | None = None

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    @property
    def image_for_kind(self) -> str:
        return self.local_node_image or self.node_image


def validate(settings: KindSettings) -> list[str]:
    """Every problem with the settings, not just the first (empty when valid)."""
    problems = []
    if not CLUSTER_NAME_RE.match(settings.name):
        problems.append(f"cluster name {settings.name!r} must match {CLUSTER_NAME_RE.pattern}")
    if not NODE_IMAGE_RE.match(settings.node_image):
        problems.append(f"node image {settings.node_image!r} is not pinned as name:tag@sha256:<digest>")
    if settings.local_node_image and settings.local_node_image != settings.node_image.split("@", 1)[0]:
        problems.append(
            f"the local node image {settings.local_node_image!r} must be the pinned image's own "
            f"name and tag, {settings.node_image.split('@', 1)[0]!r}"
        )
    ports = settings.ports
    for label, port in [("Git server host port", ports.git_host), ("engine UI host port", ports.ui_host)] + (
        [("Kubernetes API port", ports.api_server)] if ports.api_server else []
    ):
        if not 1 <= port <= 65535:
            problems.append(f"{label} {port} is not between 1 and 65535")
    for label, port in (("Git server NodePort", ports.git_node), ("engine UI NodePort", ports.ui_node)):
        if port not in NODE_PORT_RANGE:
            problems.append(f"{label} {port} is outside the NodePort range 30000-32767")
    host_ports = list(ports.host_ports().values())
    if len(set(host_ports)) != len(host_ports):
        problems.append(f"host ports {host_ports} must all differ")
    if ports.git_node == ports.ui_node:
        problems.append(f"the Git server and engine UI NodePorts must differ (both {ports.git_node})")
    for registry, mirror in settings.registry_mirrors.items():
        if not re.match(r"^https?://[^\s/]+", mirror):
            problems.append(f"mirror {mirror!r} for {registry} must be an http:// or https:// URL")
        if "/" in registry or not registry:
            problems.append(f"registry {registry!r} must be a host name such as docker.io")
    return problems


def render_config(settings: KindSettings, certs_dir: Path | None = None) -> dict:
    """The kind Cluster config (v1alpha4) for ``settings``.

    ``certs_dir`` is the host folder holding the mirrors' hosts.toml files; it
    is mounted where containerd looks for them. Needed only with mirrors.
    """
    problems = validate(settings)
    if problems:
        raise UsageError("invalid kind cluster settings: " + "; ".join(problems))
    ports = settings.ports
    node: dict = {
        "role": "control-plane",
        "image": settings.image_for_kind,
        "extraPortMappings": [
            {
                "containerPort": ports.git_node,
                "hostPort": ports.git_host,
                "listenAddress": "127.0.0.1",
                "protocol": "TCP",
            },
            {
                "containerPort": ports.ui_node,
                "hostPort": ports.ui_host,
                "listenAddress": "127.0.0.1",
                "protocol": "TCP",
            },
        ],
    }
    config: dict = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": settings.name,
        "networking": {"apiServerAddress": "127.0.0.1"},
        "nodes": [node],
    }
    if ports.api_server:
        config["networking"]["apiServerPort"] = ports.api_server
    if settings.registry_mirrors:
        if certs_dir is None:
            raise UsageError("registry mirrors need a folder for their hosts.toml files")
        # containerd reads per-registry hosts.toml files from config_path; the
        # older inline registry.mirrors tables are deprecated and gone in containerd 2.
        config["containerdConfigPatches"] = [
            f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_DIR_IN_NODE}"\n'
        ]
        node["extraMounts"] = [{"hostPath": str(certs_dir), "containerPath": CERTS_DIR_IN_NODE, "readOnly": True}]
    return config


def mirror_hosts_files(settings: KindSettings) -> dict[str, str]:
    """hosts.toml text for each mirrored registry, keyed by its folder name."""
    upstream = {"docker.io": "https://registry-1.docker.io"}
    files = {}
    for registry, mirror in sorted(settings.registry_mirrors.items()):
        server = upstream.get(registry, f"https://{registry}")
        files[registry] = (
            f'server = "{server}"\n\n[host."{mirror.rstrip("/")}"]\n  capabilities = ["pull", "resolve"]\n'
        )
    return files


def config_yaml(settings: KindSettings, certs_dir: Path | None = None) -> str:
    return yaml.safe_dump(render_config(settings, certs_dir), sort_keys=False)

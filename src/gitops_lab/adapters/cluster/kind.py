"""The kind cluster provider: a local Kubernetes cluster in Docker.

Three passes over the settings, as kind does with its own config: defaults (the
dataclass), ``validate`` (every problem at once), then ``render_config``. The
provider runs the kind CLI, which it finds on PATH when the version there is
supported, or downloads (pinned release, checked against its .sha256sum) into
the user cache.

The kubeconfig is written to its own file in the environment's state folder,
never merged into ~/.kube/config unless ``merge_kubeconfig`` is set.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from gitops_lab.adapters.cluster.base import ClusterInfo, ClusterProvider, LabPorts
from gitops_lab.cache import cache_root
from gitops_lab.downloads import download
from gitops_lab.errors import ClusterError, PreflightError, UsageError, WaitTimeout
from gitops_lab.kube.deadline import Deadline, within_deadline
from gitops_lab.reporter import Reporter
from gitops_lab.versions import pinned

# kind's release binaries are named kind-<os>-<arch> with a .sha256sum beside
# them (hack/release/build/cross.sh of kind); this host redirects to the release.
DOWNLOAD_URL = "https://kind.sigs.k8s.io/dl/{version}/kind-{os}-{arch}"
NODE_IMAGE_RE = re.compile(r"^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$")
CLUSTER_NAME_RE = re.compile(r"^[a-z0-9.-]+$")  # kind's own rule (validate.go)
VERSION_RE = re.compile(r"\bv?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.+-]+)?\b")
CERTS_DIR_IN_NODE = "/etc/containerd/certs.d"
NODE_PORT_RANGE = range(30000, 32768)
KIND_TIMEOUT = 15 * 60  # create can take minutes on a slow network
KIND_DOWNLOAD_SECONDS = 5 * 60


# --------------------------------------------------------------------------- #
# Settings and the kind config
# --------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------- #
# Finding kind
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class KindBinary:
    path: Path
    version: str  # "v0.30.0"
    source: str  # "PATH", "cache" or "downloaded"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """(0, 30, 0) from `kind version` output such as 'kind v0.30.0 go1.24.6 linux/amd64'."""
    match = VERSION_RE.search(text)
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


def is_supported(found: tuple[int, int, int], wanted: str) -> bool:
    """Same minor release as the pinned one, and not older: its node images match."""
    want = parse_version(wanted)
    return want is not None and found[:2] == want[:2] and found >= want


def host_platform(system: str | None = None, machine: str | None = None) -> tuple[str, str]:
    """(os, arch) in kind's release naming: linux|darwin|windows, amd64|arm64."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if system not in ("linux", "darwin", "windows") or arch is None:
        raise PreflightError(
            f"kind has no release for {system}/{machine}",
            fix="use a 64-bit Intel/AMD or ARM machine (amd64 or arm64)",
        )
    if system == "windows" and arch == "arm64":
        raise PreflightError("kind has no release for windows/arm64", fix="run the lab inside WSL 2")
    return system, arch


def kind_version_at(path: str | Path) -> str | None:
    """The output of `<path> version`, or None when it cannot be run."""
    try:
        done = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _http_get(url: str) -> bytes:
    return download(url, "kind", KIND_DOWNLOAD_SECONDS)


def find_kind(
    reporter: Reporter,
    version: str | None = None,
    fetch: Callable[[str], bytes] = _http_get,
    system: str | None = None,
    machine: str | None = None,
) -> KindBinary:
    """kind from PATH when its version is supported, else the pinned release from the cache or the web."""
    version = version or pinned()["kind"]["version"]
    with reporter.step(f"Finding kind {version}") as step:
        found, unsupported = _kind_on_path(version)
        if found:
            step.done(f"using {found.path} ({found.version})")
            return found
        if unsupported:
            reporter.info(f"{unsupported}; using the pinned release instead")
        cached = _kind_in_cache(version, system, machine)
        if cached:
            step.done(f"using the cached {cached.path}")
            return cached
        os_name, arch = host_platform(system, machine)
        target = _cache_path(version, system, machine)
        url = DOWNLOAD_URL.format(version=version, os=os_name, arch=arch)
        step.update(f"downloading {url}")
        binary = _download_verified(url, fetch)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        part.write_bytes(binary)
        part.chmod(0o755)
        os.replace(part, target)
        step.done(f"downloaded {url} to {target}, SHA-256 verified")
        return KindBinary(target, version, "downloaded")


def installed_kind(version: str | None = None) -> KindBinary | None:
    """kind from PATH (a supported version) or the cache; None rather than a download."""
    version = version or pinned()["kind"]["version"]
    return _kind_on_path(version)[0] or _kind_in_cache(version)


def _kind_on_path(version: str) -> tuple[KindBinary | None, str | None]:
    """(kind on PATH when supported, else None; why the one on PATH is not used)."""
    on_path = shutil.which("kind")
    if not on_path:
        return None, None
    out = kind_version_at(on_path) or ""
    found = parse_version(out)
    if found and is_supported(found, version):
        return KindBinary(Path(on_path), "v%d.%d.%d" % found, "PATH"), None
    return None, f"kind on PATH ({on_path}: {out or 'does not run'}) is not the supported {version} line"


def _cache_path(version: str, system: str | None = None, machine: str | None = None) -> Path:
    os_name, _arch = host_platform(system, machine)
    return cache_root() / "kind" / version / ("kind.exe" if os_name == "windows" else "kind")


def _kind_in_cache(version: str, system: str | None = None, machine: str | None = None) -> KindBinary | None:
    target = _cache_path(version, system, machine)
    if target.is_file() and parse_version(kind_version_at(target) or "") == parse_version(version):
        return KindBinary(target, version, "cache")
    return None


def _download_verified(url: str, fetch: Callable[[str], bytes]) -> bytes:
    try:
        binary = fetch(url)
        sums = fetch(url + ".sha256sum").decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        raise ClusterError(
            f"cannot download kind from {url}: {getattr(exc, 'reason', exc)}",
            fix="check the network or proxy, or install kind yourself and put it on PATH",
        ) from exc
    # `shasum -a 256` format: "<hex>  kind-linux-amd64"
    expected = sums.split()[0].lower() if sums.split() else ""
    actual = hashlib.sha256(binary).hexdigest()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ClusterError(f"the checksum file {url}.sha256sum is not a SHA-256 sum", fix="retry later")
    if actual != expected:
        raise ClusterError(
            f"the kind binary from {url} has SHA-256 {actual}, but its .sha256sum says {expected}",
            fix="the download was altered or cut short; retry, and report it if it persists",
        )
    return binary


# --------------------------------------------------------------------------- #
# The provider
# --------------------------------------------------------------------------- #
def _kind_error(stderr: str) -> tuple[str, str]:
    """kind's own error line and the command output it carries."""
    error, output = "", ""
    lines = [line.strip() for line in stderr.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("ERROR:") and not error:
            error = line.removeprefix("ERROR:").strip()
        if line.startswith("Command Output:"):
            output = " ".join(x for x in [line.removeprefix("Command Output:").strip()] + lines[i + 1 :] if x)
            break
    if not error:
        error = next((line for line in reversed(lines) if line), "no output")
    return error, output


class KindCluster(ClusterProvider):
    """Creates, reuses, recreates and deletes the lab's kind cluster."""

    name = "kind"
    runs_here = True

    def __init__(
        self,
        settings: KindSettings,
        state_dir: Path,
        kind: KindBinary | None = None,
        fetch: Callable[[str], bytes] = _http_get,
    ):
        self.settings = settings
        self.state_dir = Path(state_dir)
        self._kind = kind
        self._fetch = fetch

    @property
    def ports(self) -> LabPorts:
        return self.settings.ports

    def use_local_tags(self, refs: list[str]) -> None:
        """Offline, Docker may hold the node image only by its tag (an archive load drops the digest):
        then kind is given that tag."""
        if self.settings.node_image in refs:
            self.settings.local_node_image = self.settings.node_image.split("@", 1)[0]

    # -- paths ----------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "kind-config.yaml"

    @property
    def certs_dir(self) -> Path:
        return self.state_dir / "containerd-certs.d"

    @property
    def node_name(self) -> str:
        return f"{self.settings.name}-control-plane"

    # -- running kind -----------------------------------------------------------
    def kind(self, reporter: Reporter | None = None) -> KindBinary:
        if self._kind is None:
            self._kind = find_kind(reporter or Reporter(), fetch=self._fetch)
        return self._kind

    def _run(self, *args: str, doing: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.kind().path), *args]
        # kind stays in our process group, so Ctrl-C reaches it and it cleans up after itself
        seconds = within_deadline(KIND_TIMEOUT)
        try:
            if seconds <= 0:
                raise subprocess.TimeoutExpired(cmd, seconds)
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds)
        except subprocess.TimeoutExpired as exc:
            raise WaitTimeout(
                f"failed to {doing}: `kind {' '.join(args)}` did not finish within {Deadline(seconds).describe()}",
                fix="run the command again with a larger --timeout; `gitops-lab doctor` checks Docker",
            ) from exc
        if check and done.returncode != 0:
            raise self._error(doing, done.stderr)
        return done

    def _error(self, doing: str, stderr: str) -> ClusterError | PreflightError:
        error, output = _kind_error(stderr)
        detail = f"{error}: {output}" if output else error
        if "Cannot connect to the Docker daemon" in output or "failed to detect any supported node provider" in error:
            return PreflightError(
                f"failed to {doing}: Docker is not reachable ({output or error})",
                fix="start Docker (Docker Desktop, or `sudo systemctl start docker` on Linux), "
                "then run `gitops-lab doctor`",
            )
        if "permission denied" in output and "docker" in output.lower():
            return PreflightError(
                f"failed to {doing}: no permission to use Docker ({output})",
                fix="add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again)",
            )
        if "already exist for a cluster with the name" in error:
            return ClusterError(
                f"failed to {doing}: {error}",
                fix="reuse it with `gitops-lab up`, or replace it with `gitops-lab up --recreate`",
            )
        if "failed to pull image" in error:
            return ClusterError(
                f"failed to {doing}: could not pull the node image {self.settings.node_image} ({output or error})",
                fix="check the network; on a slow or offline network run `gitops-lab images pull` "
                "where there is access, or configure a registry mirror",
            )
        if "port is already allocated" in output or "address already in use" in output:
            return PreflightError(
                f"failed to {doing}: a port the cluster needs is taken ({output})",
                fix="run `gitops-lab doctor` to see which port, and free it",
            )
        return ClusterError(f"failed to {doing}: {detail}")

    # -- ClusterProvider --------------------------------------------------------
    def clusters(self) -> list[str]:
        """Names from `kind get clusters` (its "No kind clusters found." goes to stderr)."""
        done = self._run("get", "clusters", doing="list kind clusters")
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    def exists(self) -> bool:
        return self.settings.name in self.clusters()

    def ensure(self, reporter: Reporter, recreate: bool = False) -> ClusterInfo:
        self.kind(reporter)
        name = self.settings.name
        if self.exists():
            if not recreate:
                with reporter.step(f"Reusing kind cluster {name}") as step:
                    self._export_kubeconfig()
                    step.done(f"kubeconfig {self.kubeconfig}")
                return ClusterInfo(name, self.kubeconfig, self.settings.context, created=False)
            with reporter.step(f"Deleting kind cluster {name} to recreate it"):
                self._delete(doing=f"delete kind cluster {name}")
        self._create(reporter)
        return ClusterInfo(name, self.kubeconfig, self.settings.context, created=True)

    def _create(self, reporter: Reporter) -> None:
        name = self.settings.name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        certs = None
        if self.settings.registry_mirrors:
            certs = self.certs_dir
            for registry, text in mirror_hosts_files(self.settings).items():
                (certs / registry).mkdir(parents=True, exist_ok=True)
                (certs / registry / "hosts.toml").write_text(text, encoding="utf-8")
        self.config_file.write_text(config_yaml(self.settings, certs), encoding="utf-8")
        image_tag = self.settings.node_image.split("@")[0].rsplit(":", 1)[-1]
        args = [
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            str(self.config_file),
            "--kubeconfig",
            str(self.kubeconfig),
        ]
        if self.settings.retain:
            args.append("--retain")
        with reporter.step(f"Creating kind cluster {name} (Kubernetes {image_tag})") as step:
            try:
                self._run(*args, doing=f"create kind cluster {name}")
            except BaseException:
                # kind removes its nodes itself on failure unless --retain, but not
                # when it is interrupted (Ctrl-C): remove what is left here too.
                if not self.settings.retain:
                    self._cleanup_after_failure(reporter)
                else:
                    reporter.warn(
                        f"kept the failed cluster {name} for debugging (--retain); `gitops-lab down` removes it"
                    )
                raise
            self.kubeconfig.chmod(0o600)
            step.done(f"kubeconfig {self.kubeconfig}")
        if self.settings.merge_kubeconfig:
            self._run("export", "kubeconfig", "--name", name, doing="merge the kubeconfig into ~/.kube/config")

    def _delete(self, doing: str, check: bool = True) -> subprocess.CompletedProcess:
        """`kind delete cluster` for this cluster and its own kubeconfig."""
        return self._run(
            "delete",
            "cluster",
            "--name",
            self.settings.name,
            "--kubeconfig",
            str(self.kubeconfig),
            doing=doing,
            check=check,
        )

    def _cleanup_after_failure(self, reporter: Reporter) -> None:
        try:
            done = self._delete(doing="remove the half-made cluster", check=False)
            if done.returncode != 0:
                reporter.warn(f"could not remove the half-made cluster: {_kind_error(done.stderr)[0]}")
        except Exception as exc:  # the original error matters more
            reporter.warn(f"could not remove the half-made cluster: {exc}")

    def _export_kubeconfig(self) -> None:
        name = self.settings.name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        done = self._run(
            "export",
            "kubeconfig",
            "--name",
            name,
            "--kubeconfig",
            str(self.kubeconfig),
            doing=f"write the kubeconfig of kind cluster {name}",
            check=False,
        )
        if done.returncode != 0:
            error, output = _kind_error(done.stderr)
            if "is not running" in output:
                raise ClusterError(
                    f"kind cluster {name} exists but its node {self.node_name} is stopped",
                    fix=f"start it with `docker start {self.node_name}`, or replace it with `gitops-lab up --recreate`",
                )
            raise self._error(f"write the kubeconfig of kind cluster {name}", done.stderr)
        self.kubeconfig.chmod(0o600)

    def delete(self, reporter: Reporter) -> bool:
        name = self.settings.name
        with reporter.step(f"Deleting kind cluster {name}") as step:
            self.kind(reporter)
            if not self.exists():
                self.kubeconfig.unlink(missing_ok=True)
                step.done("already gone")
                return False
            self._delete(doing=f"delete kind cluster {name}")
            if self.settings.merge_kubeconfig:
                # Removes the entries from $KUBECONFIG or ~/.kube/config; the nodes are gone already.
                self._run("delete", "cluster", "--name", name, doing="clean ~/.kube/config", check=False)
            self.kubeconfig.unlink(missing_ok=True)
            removed = remove_unused_kind_network()
            step.done("deleted" + (", and its now unused docker network 'kind'" if removed else ""))
            return True

    # -- images -------------------------------------------------------------------
    def load_image_archive(self, archive: Path) -> None:
        """Load a `docker save` archive into every node of the cluster."""
        self._run(
            "load",
            "image-archive",
            str(archive),
            "--name",
            self.settings.name,
            doing=f"load {archive.name} into kind cluster {self.settings.name}",
        )

    def nodes(self) -> list[str]:
        out = self._run("get", "nodes", "--name", self.settings.name, doing="list the cluster's nodes")
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]

    def images_in_nodes(self) -> dict[str, str]:
        """Image name (fully qualified tag or digest reference) -> image ID, as every node's CRI holds it."""
        import json

        held: dict[str, str] | None = None
        for node in self.nodes():
            done = subprocess.run(
                ["docker", "exec", node, "crictl", "images", "-o", "json"], capture_output=True, text=True, timeout=120
            )
            names: dict[str, str] = {}
            if done.returncode == 0:
                for image in json.loads(done.stdout or "{}").get("images") or []:
                    for name in (image.get("repoTags") or []) + (image.get("repoDigests") or []):
                        names[name] = image.get("id", "")
            held = names if held is None else {k: v for k, v in held.items() if names.get(k) == v}
        return held or {}

    def alias_images(self, pairs: list[tuple[str, str]]) -> None:
        """Give each loaded image (tag, pinned ``name@sha256:`` reference) its digest name in every node's containerd.

        `docker save` writes tags only, so after a load a Pod that names the image
        by digest would make the kubelet pull it again; with the alias it finds it.
        """
        nodes = self.nodes()
        for tagged, by_digest in pairs:
            source, target = qualified_image(tagged), qualified_image(by_digest)
            for node in nodes:
                done = subprocess.run(
                    [
                        "docker",
                        "exec",
                        node,
                        "ctr",
                        "--namespace",
                        "k8s.io",
                        "images",
                        "tag",
                        "--force",
                        source,
                        target,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                if done.returncode != 0:
                    raise ClusterError(
                        f"failed to name {source} as {target} in node {node}: {done.stderr.strip() or done.returncode}",
                        fix=f"run `gitops-lab images load` again; check `docker exec {node} crictl images`",
                    )


KIND_NETWORK = "kind"


def remove_unused_kind_network() -> bool:
    """Remove the docker network kind made, once no container uses it (other clusters keep it)."""
    inspect = subprocess.run(
        ["docker", "network", "inspect", KIND_NETWORK, "--format", "{{len .Containers}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if inspect.returncode != 0 or inspect.stdout.strip() != "0":
        return False
    return subprocess.run(["docker", "network", "rm", KIND_NETWORK], capture_output=True, timeout=60).returncode == 0


def qualified_image(ref: str) -> str:
    """The fully qualified reference containerd stores: docker.io/library/python:3.12 for python:3.12."""
    name = ref.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return ref
    return ("docker.io/library/" if "/" not in name else "docker.io/") + ref

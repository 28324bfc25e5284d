"""The kind cluster provider: a local Kubernetes cluster in Docker, made and removed with the kind CLI.

The kubeconfig is written to its own file in the environment's state folder,
never merged into ~/.kube/config unless ``merge_kubeconfig`` is set.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitops_lab.adapters.cluster.base import ClusterInfo, ClusterProvider, LabPorts
from gitops_lab.adapters.cluster.kind_binary import KindBinary, find_kind
from gitops_lab.adapters.cluster.kind_config import KindSettings, config_yaml, mirror_hosts_files
from gitops_lab.adapters.cluster.node_images import alias_images, images_held
from gitops_lab.errors import ClusterError, PreflightError, WaitTimeout
from gitops_lab.deadline import Deadline, within_deadline
from gitops_lab.reporter import Reporter

KIND_TIMEOUT = 15 * 60  # create can take minutes on a slow network


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
    ):
        self.settings = settings
        self.state_dir = Path(state_dir)
        self._kind = kind

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
            self._kind = find_kind(reporter or Reporter())
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
        return images_held(self.nodes())

    def alias_images(self, pairs: list[tuple[str, str]]) -> None:
        """Give each loaded image (tag, pinned ``name@sha256:`` reference) its digest name in every node's containerd."""
        alias_images(self.nodes(), pairs)


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

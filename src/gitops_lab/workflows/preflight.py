"""Checks that this machine can run the lab, before anything is created.

Each check is a pure function of what the probes saw, so every branch is
tested with made-up inputs. ``collect_checks`` runs the real probes (or the
ones it is given); ``run_preflight`` is what `up` calls first: it raises
PreflightError for anything that would stop `up`, so a machine without Docker
fails in a second with one line and leaves nothing behind.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from gitops_lab.adapters.cluster.base import LabPorts
from gitops_lab.adapters.cluster.kind_binary import (
    DOWNLOAD_URL,
    host_platform,
    is_supported,
    kind_version_at,
    parse_version,
)
from gitops_lab.adapters.docker import DockerUnavailable, docker_info, docker_install_fix
from gitops_lab.adapters.renderer import found_renderer
from gitops_lab.cache import cache_root
from gitops_lab.errors import PreflightError
from gitops_lab.reporter import Reporter
from gitops_lab.versions import pinned

BLOCKING = "blocking"
WARNING = "warning"
GiB = 1024**3

# kind's known-issues page: "Pod errors due to too many open files".
INOTIFY_WATCHES = 524288
INOTIFY_INSTANCES = 512
MIN_CPUS, GOOD_CPUS = 2, 4
MIN_MEMORY, GOOD_MEMORY = 4 * GiB, 6 * GiB
MIN_DISK, GOOD_DISK = 5 * GiB, 10 * GiB


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    severity: str  # BLOCKING or WARNING: what a failure means
    detail: str
    fix: str = ""
    skipped: bool = False

    @property
    def blocks(self) -> bool:
        return not self.ok and not self.skipped and self.severity == BLOCKING

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Probes:
    """What the checks look at. Tests pass stand-ins; the defaults look at this machine."""

    docker_info: Callable[[], dict[str, Any]] = field(default_factory=lambda: docker_info)
    read_text: Callable[[str], str | None] = field(default_factory=lambda: _read_text)
    port_free: Callable[[str, int], bool] = field(default_factory=lambda: port_free)
    kind_on_path: Callable[[], str | None] = field(default_factory=lambda: _kind_on_path)
    kind_cached: Callable[[str], bool] = field(default_factory=lambda: _kind_cached)
    kind_download_problem: Callable[[str], str | None] = field(default_factory=lambda: kind_download_problem)
    machine: Callable[[], tuple[str, str]] = field(
        default_factory=lambda: lambda: (platform.system(), platform.machine())
    )
    disk_free: Callable[[str], int | None] = field(default_factory=lambda: _disk_free)
    cluster_exists: Callable[[], bool] = field(default_factory=lambda: lambda: False)
    renderer: Callable[[], str | None] = field(default_factory=lambda: found_renderer)


# --------------------------------------------------------------------------- #
# Probes of this machine
# --------------------------------------------------------------------------- #
def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now (what kind's port mapping will need)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _kind_on_path() -> str | None:
    path = shutil.which("kind")
    return (kind_version_at(path) or "unknown version") if path else None


def _kind_cached(version: str) -> bool:
    return any((cache_root() / "kind" / version / exe).is_file() for exe in ("kind", "kind.exe"))


def _disk_free(path: str) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


# --------------------------------------------------------------------------- #
# The checks: pure functions of what was seen
# --------------------------------------------------------------------------- #
def check_docker(info: dict[str, Any] | None, error: str | None, system: str) -> Check:
    if info is not None:
        version = info.get("ServerVersion", "unknown")
        name = info.get("OperatingSystem", "")
        return Check("docker", True, BLOCKING, f"Docker {version} reachable ({name})".replace(" ()", ""))
    error = error or "not reachable"
    if "permission denied" in error:
        fix = "add yourself to the docker group: `sudo usermod -aG docker $USER`, then log out and in again"
    elif "DOCKER_HOST" in os.environ:
        fix = (
            f"DOCKER_HOST is set to {os.environ['DOCKER_HOST']}: start that daemon, or unset DOCKER_HOST; "
            + docker_install_fix(system)
        )
    else:
        fix = (
            docker_install_fix(system)
            if system == "Linux"
            else "start Docker Desktop, or " + docker_install_fix(system)
        )
    return Check("docker", False, BLOCKING, f"Docker is not reachable: {error}", fix)


def check_docker_resources(info: dict[str, Any]) -> Check:
    cpus, memory = int(info.get("NCPU") or 0), int(info.get("MemTotal") or 0)
    detail = f"{cpus} CPUs and {memory / GiB:.1f} GiB of memory given to Docker"
    fix = (
        "give Docker more in Docker Desktop > Settings > Resources"
        if info.get("OperatingSystem", "").startswith("Docker Desktop")
        else "use a machine (or VM) with more CPUs and memory"
    )
    if cpus < MIN_CPUS or memory < MIN_MEMORY:
        return Check(
            "docker-resources",
            False,
            BLOCKING,
            f"{detail}; the lab needs at least {MIN_CPUS} CPUs and {MIN_MEMORY // GiB} GiB",
            fix,
        )
    if cpus < GOOD_CPUS or memory < GOOD_MEMORY:
        return Check(
            "docker-resources",
            False,
            WARNING,
            f"{detail}; expect slow start-up below {GOOD_CPUS} CPUs and {GOOD_MEMORY // GiB} GiB",
            fix,
        )
    return Check("docker-resources", True, BLOCKING, detail)


def check_cgroup(info: dict[str, Any]) -> Check:
    version = str(info.get("CgroupVersion") or "")
    if version == "2":
        return Check("cgroup", True, WARNING, f"cgroup v2 ({info.get('CgroupDriver', 'unknown')} driver)")
    if version == "1":
        return Check(
            "cgroup",
            False,
            WARNING,
            "cgroup v1: Kubernetes keeps it only in maintenance mode and newer releases refuse it",
            "switch the host to cgroup v2 (boot with systemd.unified_cgroup_hierarchy=1, "
            "or upgrade the distribution / WSL 2 / Docker Desktop)",
        )
    return Check(
        "cgroup",
        False,
        WARNING,
        "Docker did not say which cgroup version it uses",
        "check `docker info` for 'Cgroup Version'",
    )


def check_inotify(watches: str | None, instances: str | None, system: str) -> Check:
    if system != "Linux":
        return Check("inotify", True, WARNING, "not applicable: the limits of Docker Desktop's VM apply")
    try:
        w, i = int((watches or "").strip()), int((instances or "").strip())
    except ValueError:
        return Check(
            "inotify",
            False,
            WARNING,
            "cannot read /proc/sys/fs/inotify limits",
            "make sure fs.inotify.max_user_watches and max_user_instances can be read",
        )
    detail = f"max_user_watches={w}, max_user_instances={i}"
    if w < INOTIFY_WATCHES or i < INOTIFY_INSTANCES:
        return Check(
            "inotify",
            False,
            WARNING,
            f"{detail}: below {INOTIFY_WATCHES}/{INOTIFY_INSTANCES}; pods fail with 'too many open files'",
            f"sudo sysctl fs.inotify.max_user_watches={max(w, INOTIFY_WATCHES)} "
            f"fs.inotify.max_user_instances={max(i, INOTIFY_INSTANCES)} "
            "(and add both to /etc/sysctl.d/ to keep them)",
        )
    return Check("inotify", True, WARNING, detail)


def check_ports(ports: LabPorts, free: dict[int, bool], cluster_exists: bool) -> Check:
    taken = [(label, port) for label, port in ports.host_ports().items() if not free.get(port, True)]
    listed = ", ".join(f"127.0.0.1:{p} ({label})" for label, p in ports.host_ports().items())
    if not taken:
        return Check("ports", True, BLOCKING, f"free: {listed}")
    if cluster_exists:
        return Check(
            "ports",
            True,
            BLOCKING,
            "in use by the lab's existing kind cluster: " + ", ".join(f"{p} ({label})" for label, p in taken),
        )
    names = ", ".join(f"127.0.0.1:{p} ({label})" for label, p in taken)
    first = taken[0][1]
    return Check(
        "ports",
        False,
        BLOCKING,
        f"already in use: {names}",
        f"stop the program listening there (`ss -ltnp 'sport = :{first}'` or `lsof -i :{first}` shows it)",
    )


#: How long doctor waits for kind's download site to answer.
KIND_PROBE_SECONDS = 8


def kind_download_problem(version: str) -> str | None:
    """None when kind's release download answers now; else why `up` could not download kind."""
    import urllib.error
    import urllib.request

    try:
        os_name, arch = host_platform()
    except PreflightError as exc:
        return exc.message
    url = DOWNLOAD_URL.format(version=version, os=os_name, arch=arch) + ".sha256sum"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=KIND_PROBE_SECONDS):
            return None
    except urllib.error.HTTPError as exc:
        return f"{url} answers {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"cannot reach {url}: {getattr(exc, 'reason', None) or exc}"


def check_kind(
    on_path: str | None, cached: bool, wanted: str, download_problem: Callable[[], str | None] | None = None
) -> Check:
    """``download_problem`` is asked only when `up` would have to download kind."""

    def needs_download(what: str) -> Check:
        problem = download_problem() if download_problem else None
        if problem:
            return Check(
                "kind",
                False,
                BLOCKING,
                f"{what}, and `up` cannot download {wanted}: {problem}",
                f"install kind {wanted} on PATH (https://kind.sigs.k8s.io/docs/user/quick-start/), "
                "or fix the network or proxy",
            )
        return Check("kind", True, WARNING, f"{what}; `up` downloads {wanted} into the cache")

    if on_path:
        found = parse_version(on_path)
        if found and is_supported(found, wanted):
            return Check("kind", True, WARNING, f"{on_path.strip()} on PATH")
        if cached:
            return Check(
                "kind",
                True,
                WARNING,
                f"kind on PATH ({on_path.strip()}) is not the {wanted} line; the cached {wanted} is used",
            )
        return needs_download(f"kind on PATH ({on_path.strip()}) is not the {wanted} line")
    if cached:
        return Check("kind", True, WARNING, f"kind {wanted} is in the cache")
    return needs_download("kind is not on PATH")


def check_renderer(found: str | None) -> Check:
    if found:
        return Check("kustomize", True, WARNING, f"overlays render with `{found}`")
    return Check(
        "kustomize",
        False,
        WARNING,
        "neither kustomize nor kubectl is installed: the policy gate cannot render overlays, "
        "so promotions to staging and prod will stop",
        fix="install kubectl (https://kubernetes.io/docs/tasks/tools/) or kustomize",
    )


def check_arch(system: str, machine: str) -> Check:
    try:
        os_name, arch = host_platform(system, machine)
    except PreflightError as exc:
        return Check("architecture", False, BLOCKING, exc.message, exc.fix or "")
    return Check("architecture", True, BLOCKING, f"{os_name}/{arch}")


def check_disk(free: int | None, where: str) -> Check:
    if free is None:
        return Check("disk", False, WARNING, f"cannot tell the free space at {where}", "make sure 10 GiB are free")
    detail = f"{free / GiB:.1f} GiB free at {where}"
    fix = "free disk space (`docker system prune` removes unused images and containers)"
    if free < MIN_DISK:
        return Check("disk", False, BLOCKING, f"{detail}; the lab needs {MIN_DISK // GiB} GiB", fix)
    if free < GOOD_DISK:
        return Check("disk", False, WARNING, f"{detail}; {GOOD_DISK // GiB} GiB recommended", fix)
    return Check("disk", True, BLOCKING, detail)


def _skipped(name: str, why: str) -> Check:
    return Check(name, False, BLOCKING, f"not checked: {why}", skipped=True)


# --------------------------------------------------------------------------- #
# Running them
# --------------------------------------------------------------------------- #
def collect_checks(
    ports: LabPorts | None = None, probes: Probes | None = None, kind_version: str | None = None
) -> list[Check]:
    """Every check, in a fixed order. Nothing is created or changed."""
    ports = ports or LabPorts()
    probes = probes or Probes()
    kind_version = kind_version or pinned()["kind"]["version"]
    system, machine = probes.machine()
    info, error = None, None
    try:
        info = probes.docker_info()
    except DockerUnavailable as exc:
        error = str(exc)
    checks = [check_docker(info, error, system)]
    if info is not None:
        checks += [check_docker_resources(info), check_cgroup(info)]
    else:
        checks += [
            _skipped("docker-resources", "Docker is not reachable"),
            _skipped("cgroup", "Docker is not reachable"),
        ]
    checks.append(
        check_inotify(
            probes.read_text("/proc/sys/fs/inotify/max_user_watches"),
            probes.read_text("/proc/sys/fs/inotify/max_user_instances"),
            system,
        )
    )
    free = {port: probes.port_free("127.0.0.1", port) for port in ports.host_ports().values()}
    exists = False
    if not all(free.values()) and info is not None:
        try:
            exists = probes.cluster_exists()
        except Exception:  # only used to explain busy ports
            exists = False
    checks.append(check_ports(ports, free, exists))
    checks.append(
        check_kind(
            probes.kind_on_path(),
            probes.kind_cached(kind_version),
            kind_version,
            lambda: probes.kind_download_problem(kind_version),
        )
    )
    checks.append(check_renderer(probes.renderer()))
    checks.append(check_arch(system, machine))
    root = (info or {}).get("DockerRootDir")
    where = root if root and Path(root).exists() else str(Path.home())
    checks.append(check_disk(probes.disk_free(where), where))
    return checks


def run_preflight(reporter: Reporter, ports: LabPorts | None = None, probes: Probes | None = None) -> list[Check]:
    """What `up` runs first. Warnings go to the reporter; a blocking problem raises PreflightError.

    The error is one line: the first blocking problem and its fix, plus a
    count of the others (`gitops-lab doctor` lists them all).
    """
    with reporter.step("Checking this machine") as step:
        checks = collect_checks(ports, probes)
        blocking = [c for c in checks if c.blocks]
        for check in checks:
            if not check.ok and not check.skipped and not check.blocks:
                reporter.warn(f"{check.detail}; {check.fix}" if check.fix else check.detail)
        if blocking:
            first = blocking[0]
            more = f" (and {len(blocking) - 1} more problem(s): run `gitops-lab doctor`)" if len(blocking) > 1 else ""
            raise PreflightError(first.detail + more, fix=first.fix)
        step.done("ready")
    return checks

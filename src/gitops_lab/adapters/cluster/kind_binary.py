"""The kind binary: kind from PATH when the version there is supported, else the
pinned release downloaded (checked against its .sha256sum) into the user cache."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.cache import cache_root
from gitops_lab.downloads import download, download_verified
from gitops_lab.errors import ClusterError, PreflightError
from gitops_lab.reporter import Reporter
from gitops_lab.versions import pinned


# kind's release binaries are named kind-<os>-<arch> with a .sha256sum beside
# them (hack/release/build/cross.sh of kind); this host redirects to the release.
DOWNLOAD_URL = "https://kind.sigs.k8s.io/dl/{version}/kind-{os}-{arch}"
VERSION_RE = re.compile(r"\bv?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.+-]+)?\b")
KIND_DOWNLOAD_SECONDS = 5 * 60
KIND_FIX = "check the network or proxy, or install kind yourself and put it on PATH"


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


def find_kind(
    reporter: Reporter,
    version: str | None = None,
    download_url: str = DOWNLOAD_URL,
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
        url = download_url.format(version=version, os=os_name, arch=arch)
        step.update(f"downloading {url}")
        download_verified(url, target, "kind", _published_sum(url), KIND_DOWNLOAD_SECONDS, fix=KIND_FIX, mode=0o755)
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


def _published_sum(url: str) -> str:
    """The SHA-256 kind publishes beside its binary (`shasum -a 256` format: "<hex>  kind-linux-amd64")."""
    sums = download(url + ".sha256sum", "kind's checksum", KIND_DOWNLOAD_SECONDS, fix=KIND_FIX)
    expected = sums.decode("utf-8", "replace").split()[:1]
    if not expected or not re.fullmatch(r"[0-9a-fA-F]{64}", expected[0]):
        raise ClusterError(f"the checksum file {url}.sha256sum is not a SHA-256 sum", fix="retry later")
    return expected[0].lower()

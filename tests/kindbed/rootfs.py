"""Debian bookworm root filesystems for the bed's images, made with debootstrap.

Two trees: the kind node (what kind's images/base installs with apt, plus
Debian's runc and CNI plugins) and one tree every pod image starts from (what
kube-proxy, the CNI configurator, Argo CD, Redis, the Git server and the model
server need). One at a time: two debootstraps sharing a package cache break.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SUITE = "bookworm"
NODE_PACKAGES = (
    # kind's images/base: services, Kubernetes' needs, storage, runtime, kind's own tools
    "systemd",
    "systemd-sysv",
    "conntrack",
    "iptables",
    "nftables",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "fuse-overlayfs",
    "nfs-common",
    "bash",
    "ca-certificates",
    "curl",
    "jq",
    "procps",
    "socat",
    "ebtables",
    "ipset",
    # built from source by kind; Debian's here (see README.md)
    "runc",
    "containernetworking-plugins",
)
POD_PACKAGES = (
    "iptables",
    "nftables",
    "conntrack",
    "iproute2",
    "ipset",
    "kmod",  # kube-proxy
    "ca-certificates",
    "tini",
    "python3-minimal",
    "libpython3.11-stdlib",
    "python-is-python3",  # model server, Git server
    "git",
    "openssh-client",
    "gnupg",  # Argo CD's repo-server, Flux's source-controller, the Git server
    "redis-server",  # Argo CD's cache
)
TRIM = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")


def debian_mirror() -> str:
    """The Debian archive this machine's apt already uses."""
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in source.read_text(encoding="utf-8").splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    for line in (
        Path("/etc/apt/sources.list").read_text(encoding="utf-8").splitlines()
        if Path("/etc/apt/sources.list").is_file()
        else []
    ):
        parts = line.split()
        if parts[:1] == ["deb"] and len(parts) > 1:
            return parts[1]
    return "http://deb.debian.org/debian"


def debootstrap(target: Path, packages: tuple[str, ...], cache: Path, log: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--cache-dir={cache}",
        f"--include={','.join(packages)}",
        SUITE,
        str(target),
        debian_mirror(),
    ]
    with log.open("wb") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"build.py: debootstrap of {target.name} failed ({proc.returncode}); see {log}")
    for rel in TRIM:
        for child in (target / rel).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

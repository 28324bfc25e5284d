#!/usr/bin/env python3
"""Build the kind bed: a real kind cluster's every image, with no container registry.

    python tests/kindbed/build.py            # build what is missing (a no-op when complete)
    python tests/kindbed/build.py --check    # exit 0 if complete, 1 if not
    python tests/kindbed/build.py --print-env   # DOCKER_HOST and PATH lines for a shell

What it makes, from pinned sources only (versions from src/gitops_lab/versions.yaml):
- kind itself, and the node image ``kindest/node:<kubernetes>`` made by kind's own
  ``kind build node-image`` from a base image rebuilt after kind's images/base;
- the component images under their upstream names (kube-*, etcd, coredns, pause,
  kindest/kindnetd, kindest/local-path-*);
- every image the lab runs, under the exact names the product's manifests use
  (Argo CD, Redis, Flux's source-, kustomize- and notification-controller, the Git server's
  base, the model server's Python);
- Flux's install.yaml, assembled from flux2's and the controllers' own modules.

All of it goes to the cache (see layout.py) and into the data root of the bed's
own private dockerd (see dockerd.py), never into the machine's Docker. Each step
has a stamp; a step whose stamp matches is skipped. The Go programs come from the
testbed's builder; Argo CD's, Flux's and kustomize's binaries are the testbed's
own (build the testbed first). README.md beside this file says what differs
from upstream kind and why.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed import build as testbed_build

from kindbed import steps
from kindbed.components import go_components
from kindbed.dockerd import PrivateDockerd
from kindbed.layout import cache_dir, docker_host

APT_PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap", "gcc": "gcc"}


def log(msg: str) -> None:
    print(f"[kindbed] {msg}", flush=True)


def ensure_debian_packages() -> None:
    need = sorted({pkg for exe, pkg in APT_PACKAGES.items() if not shutil.which(exe)})
    if not need:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"build.py: missing {', '.join(need)}: install them with 'apt-get install -y {' '.join(need)}'")
    t0 = time.monotonic()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *need],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    # the package's own daemon is not wanted: the bed runs a private one
    if shutil.which("systemctl"):
        subprocess.run(
            ["systemctl", "disable", "--now", "docker.service", "docker.socket"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    log(f"apt-get install {' '.join(need)}: {time.monotonic() - t0:.0f}s")


def build_go(directory: Path, jobs: int, verbose: bool) -> None:
    builder = testbed_build.Builder(jobs, verbose, directory)
    for comp in go_components():
        stamp = directory / "stamps" / f"{comp.name}.json"
        done = (
            stamp.is_file()
            and stamp.read_text() == comp.stamp_key()
            and all((directory / "bin" / b).is_file() for b in comp.binaries)
        )
        if done:
            log(f"{comp.name} {comp.version}: cached")
            continue
        log(f"{comp.name} {comp.version}: building ...")
        secs = builder.build(comp)
        log(f"{comp.name} {comp.version}: built in {secs:.0f}s")


def _catching(run, failures: list[BaseException]):
    def wrapped() -> None:
        try:
            run()
        except BaseException as exc:  # re-raised in the main thread
            failures.append(exc)

    return wrapped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--check", action="store_true", help="only say whether the bed is complete")
    ap.add_argument("--print-env", action="store_true", help="print DOCKER_HOST and PATH for a shell")
    ap.add_argument("--only", choices=["go", "images"], help="build only the Go programs, or only the images")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args(argv)
    directory = cache_dir()
    if args.print_env:
        print(f"export DOCKER_HOST={docker_host()}")
        print(f"export PATH={directory / 'bin'}:$PATH")
        return 0
    if args.check:
        missing = steps.missing(directory)
        print("complete" if not missing else f"incomplete: {', '.join(missing)}")
        return 0 if not missing else 1
    if not steps.missing(directory):
        log(f"complete: {directory}")
        return 0
    t0 = time.monotonic()
    log(f"cache: {directory}")
    ensure_debian_packages()
    if args.only in (None, "go"):
        # The debootstraps wait on the network, the Go builds on the CPU: run them side by side.
        failures: list[BaseException] = []
        rootfs = (
            threading.Thread(target=_catching(lambda: steps.build_rootfs(directory, log), failures), daemon=True)
            if args.only is None
            else None
        )
        if rootfs:
            rootfs.start()
        build_go(directory, args.jobs, args.verbose)
        if rootfs:
            rootfs.join()
            if failures:
                raise failures[0]
    if args.only in (None, "images"):
        with PrivateDockerd(directory) as dockerd:
            steps.build_images(directory, dockerd, log)
    log(f"done in {time.monotonic() - t0:.0f}s")
    missing = steps.missing(directory)
    if missing and not args.only:
        log(f"still incomplete: {', '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

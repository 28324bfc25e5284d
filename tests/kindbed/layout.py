"""Where the kind bed lives and what it builds: read from versions.yaml only.

The kind bed is test infrastructure, like tests/testbed: everything a kind
cluster needs on a machine with no container registry, built from pinned
sources (Go modules, Debian packages) into a cache outside the repository:
``$GITOPS_LAB_KINDBED_CACHE`` or ``~/.cache/gitops-lab-kindbed``, one folder per
version set. Shared by build.py, dockerd.py and the pytest plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "src" / "gitops_lab" / "versions.yaml"
CACHE_ENV = "GITOPS_LAB_KINDBED_CACHE"
# Bump when the way the bed is built changes, so an old cache is not reused.
RECIPE = "1"


# versions.yaml's flux keys that only some steps use (their stamps hold them).
STEP_KEYED_FLUX_PINS = ("notification_controller", "testbed_version")


def load_versions() -> dict:
    with VERSIONS_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def version_set(v: dict | None = None) -> dict:
    """Every pin the bed depends on, flat enough to hash."""
    v = v or load_versions()
    return {
        "kind": v["kind"],
        "kubernetes": v["kubernetes"]["version"],
        "argocd": v["argocd"]["version"],
        # Left out: module_built_sha256 (what the bed makes, not what it is made from: checked after the
        # build) and notification-controller's pins (only the engine-manifests and lab-images steps use them,
        # and their stamps hold them, so a change rebuilds those two steps, not the whole bed).
        "flux": {
            k: val for k, val in v["flux"].items() if k != "module_built_sha256" and k not in STEP_KEYED_FLUX_PINS
        },
        "recipe": RECIPE,
    }


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitops-lab-kindbed"


def cache_dir(v: dict | None = None) -> Path:
    vs = version_set(v)
    digest = hashlib.sha256(json.dumps(vs, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / f"kind-{vs['kind']['version']}-{digest}"


def node_image_tag(v: dict | None = None) -> str:
    """kindest/node:v1.34.0: the pinned node image's name and tag, without its digest."""
    v = v or load_versions()
    return v["kind"]["node_image"].split("@", 1)[0]


def run_dir() -> Path:
    """Sockets and pid files of the bed's private dockerd (short path: unix sockets have a length limit)."""
    return Path(os.environ.get("GITOPS_LAB_KINDBED_RUN", "/run/gitops-lab-kindbed"))


def docker_host() -> str:
    return f"unix://{run_dir() / 'docker.sock'}"


def module_dir(module: str, version: str) -> Path:
    """Where the Go module proxy's copy of ``module@version`` is unpacked (downloaded when missing)."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True, check=True, cwd="/"
    )
    info = json.loads(out.stdout)
    if info.get("Error"):
        raise SystemExit(f"build.py: cannot download {module}@{version}: {info['Error']}")
    return Path(info["Dir"])

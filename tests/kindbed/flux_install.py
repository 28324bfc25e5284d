"""Flux's install.yaml, assembled from the modules where no release asset can be fetched.

Upstream, `flux install` and the release's install.yaml come from flux2's
manifests/install kustomization, whose controller bases name two release
assets per controller (``<controller>.crds.yaml`` and
``<controller>.deployment.yaml``, which the controllers' release workflow
renders from their config/crd and config/manager). Here those two files are
rendered from the controllers' own Go modules at the pinned versions, put in
place of the URLs, and flux2's install kustomization is built with kustomize,
keeping only the controllers a lab runs (README.md lists the difference).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from kindbed.layout import module_dir
from testbed.build import built_version

RECIPE = "2"
CONTROLLERS = ("source-controller", "kustomize-controller", "notification-controller")


def kustomize_build(kustomize: Path, folder: Path) -> str:
    proc = subprocess.run([str(kustomize), "build", str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"build.py: kustomize build {folder} failed: {proc.stderr}")
    return proc.stdout


def _writable_copy(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def assemble(versions: dict, dest: Path, kustomize: Path, work: Path) -> None:
    flux = versions["flux"]
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    manifests = work / "manifests"
    _writable_copy(module_dir("github.com/fluxcd/flux2/v2", flux["version"]) / "manifests", manifests)
    for controller in CONTROLLERS:
        # the version the beds build (versions.yaml testbed_version), which its config/manager's image names
        version = built_version(versions, "flux", controller.replace("-", "_"))
        source = work / "modules" / controller
        _writable_copy(module_dir(f"github.com/fluxcd/{controller}", version) / "config", source)
        base = manifests / "bases" / controller
        (base / f"{controller}.crds.yaml").write_text(kustomize_build(kustomize, source / "crd"))
        (base / f"{controller}.deployment.yaml").write_text(kustomize_build(kustomize, source / "manager"))
        kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
        kustomization["resources"] = [
            r.rsplit("/", 1)[-1] if r.startswith("https://") else r for r in kustomization["resources"]
        ]
        (base / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    install = manifests / "install" / "kustomization.yaml"
    kustomization = yaml.safe_load(install.read_text())
    kustomization["resources"] = [
        r for r in kustomization["resources"] if not r.startswith("../bases/") or r.rsplit("/", 1)[-1] in CONTROLLERS
    ]
    install.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    text = kustomize_build(kustomize, manifests / "install")
    header = (
        f"# Flux {flux['version']} install manifest, assembled by gitops-lab's kind bed from the Go modules\n"
        f"# of flux2 {flux['version']} and of {', '.join(CONTROLLERS)} (tests/kindbed/flux_install.py).\n"
        "# Not the release asset: see tests/kindbed/README.md for the differences.\n"
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(header + text)
    shutil.rmtree(work)

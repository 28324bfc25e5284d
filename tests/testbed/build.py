#!/usr/bin/env python3
"""Build the testbed's pinned components from their Go modules into a cache.

    python tests/testbed/build.py            # build what is missing
    python tests/testbed/build.py --check    # exit 0 if the cache is complete, 1 if not
    python tests/testbed/build.py --print-bin-dir

Everything goes to a cache outside the repository:
``$GITOPS_LAB_TESTBED_CACHE`` or ``~/.cache/gitops-lab-testbed``, then one folder
per version set (a short hash of the pinned versions), holding ``bin/``,
``crds/``, the generated wrapper modules (``src/``) and one stamp file per
component. A component whose stamp matches is skipped, so a second run with
a complete cache does nothing.

Versions come from src/gitops_lab/versions.yaml only. Needs Go (``go`` on
PATH or /usr/local/go/bin/go), Go module proxy access, and for the Argo CD
part the Debian packages redis-server and git (installed with apt-get when
missing and running as root). Only the standard library and PyYAML are used.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "src" / "gitops_lab" / "versions.yaml"
CACHE_ENV = "GITOPS_LAB_TESTBED_CACHE"
# Bump when the way components are built changes, so old caches are not reused.
BUILD_RECIPE = "1"


# --------------------------------------------------------------------------- #
# Versions and cache layout (shared with fixtures.py, which imports these)
# --------------------------------------------------------------------------- #
def load_versions() -> dict:
    with VERSIONS_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def version_set(v: dict | None = None) -> dict[str, str]:
    """The versions the testbed builds, flat."""
    v = v or load_versions()
    return {
        "kubernetes": v["kubernetes"]["version"],
        "etcd": v["etcd"]["version"],
        "kwok": v["kwok"]["version"],
        "argocd": v["argocd"]["version"],
        "kustomize": v["argocd"]["kustomize"],
        "source_controller": v["flux"]["source_controller"],
        "kustomize_controller": v["flux"]["kustomize_controller"],
        "notification_controller": built_version(v, "flux", "notification_controller"),
        "gitea": v["gitea"]["version"],
        "recipe": BUILD_RECIPE,
    }
    # Left out: sops (the Argo CD plugin's decrypter). Only its stamp holds its pin, so a
    # change rebuilds sops alone rather than starting a new version-set folder.


def built_version(v: dict, section: str, key: str) -> str:
    """The version the beds build of ``v[section][key]``: versions.yaml's testbed_version, else the pin."""
    return (v[section].get("testbed_version") or {}).get(key) or v[section][key]


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitops-lab-testbed"


def cache_dir(v: dict | None = None) -> Path:
    vs = version_set(v)
    digest = hashlib.sha256(json.dumps(vs, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / f"k8s-{vs['kubernetes']}-{digest}"


# --------------------------------------------------------------------------- #
# Components
# --------------------------------------------------------------------------- #
@dataclass
class Component:
    name: str
    module: str
    version: str
    # binary name -> package path
    binaries: dict[str, str]
    ldflags: list[str] = field(default_factory=list)
    # directories (relative to the module root) whose *.yaml go to crds/<name>/
    crd_dirs: list[str] = field(default_factory=list)
    # version to use for a k8s staging module replaced by a local path whose
    # requirement is the v0.0.0 placeholder
    staging_version: str | None = None
    # extra "module => same module at version" replaces, from versions.yaml
    # (testbed_replace), where the exact upstream dependency cannot be had here
    extra_replace: dict[str, str] = field(default_factory=dict)
    # go build -tags
    tags: list[str] = field(default_factory=list)
    # build from this copy of the module instead of the proxy's (a local-path
    # replace: the kind bed's Argo CD with its UI assets in ui/dist/app)
    source_dir: str | None = None
    # the path the module's own go.mod declares, when the proxy serves it under
    # another one (code.gitea.io/gitea declares gitea.dev): the wrapper requires
    # this path and replaces it by ``module`` at ``version``; packages use it
    import_path: str | None = None
    # directories (relative to the module root) copied whole to share/<name>/:
    # files a binary reads at run time (Gitea's templates and options)
    share_dirs: list[str] = field(default_factory=list)

    def stamp_key(self) -> str:
        key = {
            "module": self.module,
            "version": self.version,
            "bins": self.binaries,
            "ldflags": self.ldflags,
            "crds": self.crd_dirs,
            "recipe": BUILD_RECIPE,
        }
        if self.extra_replace:
            key["extra_replace"] = self.extra_replace
        if self.tags:
            key["tags"] = self.tags
        if self.source_dir:
            key["source_dir"] = self.source_dir
        if self.import_path:
            key["import_path"] = self.import_path
        if self.share_dirs:
            key["share"] = self.share_dirs
        return json.dumps(key, sort_keys=True)

    @property
    def path(self) -> str:
        """The module path its packages are imported by."""
        return self.import_path or self.module


def testbed_replaces(v: dict | None = None) -> dict[str, dict[str, str]]:
    """versions.yaml's testbed_replace entries, by component name."""
    v = v or load_versions()
    out: dict[str, dict[str, str]] = {}
    for section in v.values():
        if isinstance(section, dict):
            for comp, repl in (section.get("testbed_replace") or {}).items():
                out.setdefault(comp.replace("_", "-"), {}).update(repl or {})
    return out


def components(v: dict | None = None) -> list[Component]:
    v = v or load_versions()
    vs = version_set(v)
    k8s = vs["kubernetes"]  # v1.34.0
    major, minor, patch = k8s.lstrip("v").split(".")[:3]
    build_date = "1970-01-01T00:00:00Z"  # fixed: keeps builds reproducible
    kver = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        kver += [
            f"-X {pkg}.gitVersion={k8s}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={build_date}",
        ]
    argo = vs["argocd"]
    comps = [
        Component(
            "etcd",
            "go.etcd.io/etcd/server/v3",
            vs["etcd"],
            {"etcd": "go.etcd.io/etcd/server/v3"},
        ),
        Component(
            "kubernetes",
            "k8s.io/kubernetes",
            k8s,
            {b: f"k8s.io/kubernetes/cmd/{b}" for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")},
            ldflags=kver,
            staging_version=f"v0.{minor}.{patch}",
        ),
        Component(
            "kwok",
            "sigs.k8s.io/kwok",
            vs["kwok"],
            {"kwok": "sigs.k8s.io/kwok/cmd/kwok", "kwokctl": "sigs.k8s.io/kwok/cmd/kwokctl"},
            ldflags=[f"-X sigs.k8s.io/kwok/pkg/consts.Version={vs['kwok'].lstrip('v')}"],
        ),
        Component(
            "kustomize",
            "sigs.k8s.io/kustomize/kustomize/v5",
            vs["kustomize"],
            {"kustomize": "sigs.k8s.io/kustomize/kustomize/v5"},
        ),
        Component(
            "source-controller",
            "github.com/fluxcd/source-controller",
            vs["source_controller"],
            {"source-controller": "github.com/fluxcd/source-controller"},
            crd_dirs=["config/crd/bases"],
        ),
        Component(
            "kustomize-controller",
            "github.com/fluxcd/kustomize-controller",
            vs["kustomize_controller"],
            {"kustomize-controller": "github.com/fluxcd/kustomize-controller"},
            crd_dirs=["config/crd/bases"],
        ),
        Component(
            "notification-controller",
            "github.com/fluxcd/notification-controller",
            vs["notification_controller"],
            {"notification-controller": "github.com/fluxcd/notification-controller"},
            crd_dirs=["config/crd/bases"],
        ),
        Component(
            "argocd",
            "github.com/argoproj/argo-cd/v3",
            argo,
            {"argocd": "github.com/argoproj/argo-cd/v3/cmd"},
            ldflags=[
                f"-X github.com/argoproj/argo-cd/v3/common.version={argo.lstrip('v')}",
                "-X github.com/argoproj/argo-cd/v3/common.gitTreeState=clean",
            ],
            crd_dirs=["manifests/crds"],
        ),
        # Built without the `bindata` tag: templates, options (locales, licences)
        # and public/ are read at run time from share/gitea (Gitea's
        # STATIC_ROOT_PATH), and the web UI's compiled frontend (public/assets,
        # made by its npm build) is absent. The API, Git over HTTP and webhooks
        # need none of it. No build tags: this release's SQLite driver
        # (modernc.org/sqlite, models/db/driver_sqlite_modernc.go) is pure Go and
        # built in unless `sqlite_mattn` asks for the cgo one, so the old
        # `sqlite sqlite_unlock_notify` tags mean nothing here.
        Component(
            "gitea",
            v["gitea"]["module"],
            vs["gitea"],
            {"gitea": v["gitea"]["import_path"]},
            ldflags=[f"-X main.Version={vs['gitea'].lstrip('v')}"],
            import_path=v["gitea"]["import_path"],
            share_dirs=["templates", "options", "public"],
        ),
        # The config-management plugin beside argocd-repo-server decrypts SOPS files with it
        # (docs/secrets.md); the testbed runs argocd-cmp-server as a host process calling this one.
        Component(
            "sops",
            v["sops"]["module"],
            v["sops"]["version"],
            {"sops": f"{v['sops']['module']}/cmd/sops"},
        ),
    ]
    extra = testbed_replaces(v)
    for c in comps:
        c.extra_replace = dict(extra.get(c.name, {}))
    return comps


def is_complete(v: dict | None = None, only: Collection[str] | None = None) -> tuple[bool, list[str]]:
    """Whether every component's (or only those named) stamp in the cache matches; and what is missing."""
    d = cache_dir(v)
    missing = []
    for c in components(v):
        if only is not None and c.name not in only:
            continue
        stamp = d / "stamps" / f"{c.name}.json"
        ok = stamp.is_file() and stamp.read_text() == c.stamp_key()
        ok = ok and all((d / "bin" / b).is_file() for b in c.binaries)
        ok = ok and all((d / "share" / c.name / rel).is_dir() for rel in c.share_dirs)
        if not ok:
            missing.append(c.name)
    return (not missing, missing)


# --------------------------------------------------------------------------- #
# Building
# --------------------------------------------------------------------------- #
def find_go() -> str:
    go = shutil.which("go")
    if go:
        return go
    for cand in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if os.access(cand, os.X_OK):
            return cand
    sys.exit("build.py: Go is required (go on PATH or /usr/local/go/bin/go)")


class Builder:
    def __init__(self, jobs: int, verbose: bool, directory: Path | None = None):
        self.go = find_go()
        self.jobs = jobs
        self.verbose = verbose
        self.dir = directory or cache_dir()
        self.env = dict(os.environ)
        self.env.update(
            {
                "CGO_ENABLED": "0",
                "GOTOOLCHAIN": "local",
                "GOFLAGS": (self.env.get("GOFLAGS", "") + " -buildvcs=false").strip(),
                "GOWORK": "off",
            }
        )

    def run(self, args: list[str], cwd: Path) -> str:
        if self.verbose:
            print("  $", " ".join(args), flush=True)
        proc = subprocess.run(args, cwd=cwd, env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout)
            raise SystemExit(f"build.py: command failed ({proc.returncode}): {' '.join(args)}")
        return proc.stdout

    def go_version(self) -> str:
        out = self.run([self.go, "env", "GOVERSION"], cwd=Path.cwd()).strip()  # go1.26.8
        parts = out.removeprefix("go").split(".")
        return ".".join(parts[:2])

    def module_dir(self, c: Component, cwd: Path) -> Path:
        out = self.run([self.go, "mod", "download", "-json", f"{c.module}@{c.version}"], cwd)
        info = json.loads(out)
        if info.get("Error"):
            raise SystemExit(f"build.py: cannot download {c.module}@{c.version}: {info['Error']}")
        return Path(info["Dir"])

    def wrapper_gomod(self, c: Component, moddir: Path) -> str:
        """go.mod of a wrapper module that requires c.module and carries over its
        replace directives, with local-path replaces turned into versions."""
        up = json.loads(self.run([self.go, "mod", "edit", "-json", str(moddir / "go.mod")], moddir.parent))
        required = {r["Path"]: r["Version"] for r in up.get("Require") or []}
        lines = [
            f"// Generated by gitops-lab tests/testbed/build.py: a wrapper to build {c.module}@{c.version}.",
            "module gitops-lab.testbed/" + c.name,
            "",
            f"go {self.go_version()}",
            "",
            f"require {c.path} {c.version}",
            "",
        ]
        if c.import_path:
            # a copy of the module (source_dir) stands in for it under the path its packages import
            target = c.source_dir or f"{c.module} {c.version}"
            lines += [f"replace {c.import_path} => {target}", ""]
        for r in up.get("Replace") or []:
            old, new = r["Old"], r["New"]
            old_s = old["Path"] + (" " + old["Version"] if old.get("Version") else "")
            if new.get("Version"):
                lines.append(f"replace {old_s} => {new['Path']} {new['Version']}")
                continue
            # a local path: use the version the module requires for it
            path = new["Path"]
            if "FORBIDDEN" in path:
                continue  # etcd's guard against bad imports; not needed here
            ver = required.get(old["Path"])
            if (ver is None or ver.startswith("v0.0.0")) and c.staging_version:
                ver = c.staging_version
            if ver is None:
                ver = c.version
            lines.append(f"replace {old_s} => {old['Path']} {ver}")
        for mod, ver in sorted(c.extra_replace.items()):
            lines.append("// versions.yaml testbed_replace: not the upstream version, see there")
            lines.append(f"replace {mod} => {mod} {ver}")
        if c.source_dir and not c.import_path:
            lines.append(f"replace {c.module} => {c.source_dir}")
        return "\n".join(lines) + "\n"

    def build(self, c: Component) -> float:
        t0 = time.monotonic()
        src = self.dir / "src" / c.name
        src.mkdir(parents=True, exist_ok=True)
        moddir = self.module_dir(c, src)
        (src / "go.mod").write_text(self.wrapper_gomod(c, moddir))
        (src / "go.sum").unlink(missing_ok=True)
        # go.sum seeded from upstream, then completed for the packages we build.
        upsum = moddir / "go.sum"
        if upsum.is_file():
            shutil.copyfile(upsum, src / "go.sum")
            os.chmod(src / "go.sum", 0o644)
        pkgs = list(c.binaries.values())
        self.run([self.go, "get"] + [f"{p}@{c.version}" for p in pkgs], src)
        # the requirement must not have moved
        got = self.run([self.go, "list", "-m", "-f", "{{.Version}}", c.path], src).strip()
        if got != c.version:
            raise SystemExit(f"build.py: {c.path} resolved to {got}, want {c.version}")
        bindir = self.dir / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        ldflags = " ".join(["-s", "-w"] + c.ldflags)
        for name, pkg in c.binaries.items():
            tmp = bindir / f".{name}.tmp"
            tags = [f"-tags={' '.join(c.tags)}"] if c.tags else []
            self.run(
                [self.go, "build", f"-p={self.jobs}", "-trimpath", *tags, f"-ldflags={ldflags}", "-o", str(tmp), pkg],
                src,
            )
            os.replace(tmp, bindir / name)
        for rel in c.crd_dirs:
            dest = self.dir / "crds" / c.name
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for f in sorted((moddir / rel).glob("*.yaml")):
                if f.name == "kustomization.yaml":
                    continue
                shutil.copyfile(f, dest / f.name)
                os.chmod(dest / f.name, 0o644)
        copy_share(c, moddir, self.dir)
        stamps = self.dir / "stamps"
        stamps.mkdir(exist_ok=True)
        (stamps / f"{c.name}.json").write_text(c.stamp_key())
        return time.monotonic() - t0


def copy_share(c: Component, src_root: Path, dest: Path) -> None:
    """c's share_dirs from src_root (a module root, or another cache's share/<name>) to dest's share/<name>."""
    for rel in c.share_dirs:
        target = dest / "share" / c.name / rel
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src_root / rel, target, copy_function=shutil.copyfile)
        # the module cache is read-only, and copytree copies the folders' modes:
        # make the copy writable, or the next rebuild cannot remove it
        for folder, _subdirs, _files in os.walk(target):
            os.chmod(folder, 0o755)


def reuse_from_sibling(c: Component, dest: Path) -> Path | None:
    """Another version set's cache with this very component (same stamp):
    copy its binaries and CRDs instead of building them again."""
    for other in sorted(cache_root().glob("*/stamps")):
        src = other.parent
        if src == dest:
            continue
        stamp = other / f"{c.name}.json"
        try:
            if stamp.read_text() != c.stamp_key():
                continue
        except OSError:
            continue
        if not all((src / "bin" / b).is_file() for b in c.binaries):
            continue
        if not all((src / "share" / c.name / rel).is_dir() for rel in c.share_dirs):
            continue
        (dest / "bin").mkdir(parents=True, exist_ok=True)
        for b in c.binaries:
            tmp = dest / "bin" / f".{b}.tmp"
            shutil.copy2(src / "bin" / b, tmp)
            os.replace(tmp, dest / "bin" / b)
        if c.crd_dirs and (src / "crds" / c.name).is_dir():
            shutil.rmtree(dest / "crds" / c.name, ignore_errors=True)
            shutil.copytree(src / "crds" / c.name, dest / "crds" / c.name)
        copy_share(c, src / "share" / c.name, dest)
        (dest / "stamps").mkdir(parents=True, exist_ok=True)
        (dest / "stamps" / f"{c.name}.json").write_text(c.stamp_key())
        return src
    return None


def ensure_debian_packages(install: bool) -> None:
    need = [
        pkg
        for pkg, exe in (("redis-server", "redis-server"), ("git", "git"))
        if not shutil.which(exe) and not os.access(f"/usr/bin/{exe}", os.X_OK)
    ]
    if not need:
        return
    if not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        print(
            f"build.py: missing {', '.join(need)}: install with 'apt-get install -y {' '.join(need)}'", file=sys.stderr
        )
        return
    t0 = time.monotonic()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + need, check=True, env=env)
    # the package's own service is not wanted: the fixtures start their own redis
    if "redis-server" in need and shutil.which("systemctl"):
        subprocess.run(
            ["systemctl", "disable", "--now", "redis-server"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    print(f"[testbed] apt-get install {' '.join(need)}: {time.monotonic() - t0:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 2,
        help="parallel compile jobs passed to go build -p (default: CPU count)",
    )
    ap.add_argument("--check", action="store_true", help="only check whether the cache is complete")
    ap.add_argument("--print-bin-dir", action="store_true", help="print the bin directory and exit")
    ap.add_argument("--only", action="append", default=[], help="build only this component (repeatable)")
    ap.add_argument("--no-apt", action="store_true", help="do not apt-get install redis-server/git")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args(argv)

    if args.print_bin_dir:
        print(cache_dir() / "bin")
        return 0
    complete, missing = is_complete()
    if args.check:
        print("complete" if complete else f"incomplete: {', '.join(missing)}")
        return 0 if complete else 1

    ensure_debian_packages(install=not args.no_apt)
    b = Builder(args.jobs, args.verbose)
    print(f"[testbed] cache: {b.dir}", flush=True)
    total0 = time.monotonic()
    built = 0
    failed: list[str] = []
    for c in components():
        if args.only and c.name not in args.only:
            continue
        if c.name not in missing:
            print(f"[testbed] {c.name} {c.version}: cached", flush=True)
            continue
        donor = reuse_from_sibling(c, b.dir)
        if donor:
            print(f"[testbed] {c.name} {c.version}: reused from {donor}", flush=True)
            continue
        print(f"[testbed] {c.name} {c.version}: building ...", flush=True)
        t0 = time.monotonic()
        try:
            secs = b.build(c)
        except SystemExit as exc:  # go along with the others; report at the end
            failed.append(c.name)
            print(
                f"[testbed] {c.name} {c.version}: FAILED after {time.monotonic() - t0:.0f}s: {exc}",
                file=sys.stderr,
                flush=True,
            )
            continue
        built += 1
        print(f"[testbed] {c.name} {c.version}: built in {secs:.0f}s", flush=True)
    total = time.monotonic() - total0
    print(
        f"[testbed] done: {built} component(s) built in {total:.0f}s "
        f"({_dt.datetime.now().isoformat(timespec='seconds')})",
        flush=True,
    )
    if failed:
        print(f"[testbed] FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    ok, still = is_complete()
    if not ok and not args.only:
        print(f"[testbed] still incomplete: {', '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

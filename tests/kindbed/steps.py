"""The kind bed's image steps, in order, each with a stamp so a complete step is skipped.

A step's stamp records what it was built from (versions, recipe, inputs); a
step is redone when its stamp differs or when an image it makes is missing
from the bed's dockerd. See build.py for the whole picture.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kindbed import argocd_ui, flux_install, gitea_image, gitea_ui, rootfs, sops_image
from kindbed.components import go_components
from kindbed.dockerd import PrivateDockerd, lacks_sys_resource
from kindbed.layout import RECIPE, load_versions, module_dir, node_image_tag
from testbed.build import built_version

HERE = Path(__file__).resolve().parent
POD_BASE = "gitops-lab-kindbed/pod-base:bookworm"
NODE_BASE_OS = "gitops-lab-kindbed/kind-base-os:bookworm"
NODE_BASE = "gitops-lab-kindbed/kind-base:bookworm"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ARGOCD_ROLES = (
    "argocd-server",
    "argocd-repo-server",
    "argocd-cmp-server",
    "argocd-application-controller",
    "argocd-dex",
    "argocd-notifications",
    "argocd-applicationset-controller",
    "argocd-k8s-auth",
    "argocd-commit-server",
)
Log = Callable[[str], None]


# --------------------------------------------------------------------------- #
# docker, through the bed's own daemon
# --------------------------------------------------------------------------- #
def docker(dockerd: PrivateDockerd, *args: str, stdin: bytes | None = None, quiet: bool = True) -> str:
    env = dict(os.environ, **dockerd.env(), DOCKER_BUILDKIT="0")
    proc = subprocess.run(["docker", *args], env=env, input=stdin, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"build.py: docker {' '.join(args[:3])} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace")


def image_exists(dockerd: PrivateDockerd, ref: str) -> bool:
    env = dict(os.environ, **dockerd.env())
    return subprocess.run(["docker", "image", "inspect", ref], env=env, capture_output=True).returncode == 0


def import_tree(dockerd: PrivateDockerd, tree: Path, tag: str, changes: list[str]) -> None:
    """`tar -C tree . | docker import` with the given Dockerfile changes."""
    args = ["import"]
    for change in changes:
        args += ["--change", change]
    tar = subprocess.Popen(["tar", "-C", str(tree), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    env = dict(os.environ, **dockerd.env())
    proc = subprocess.run(["docker", *args, "-", tag], env=env, stdin=tar.stdout, capture_output=True)
    tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise SystemExit(f"build.py: docker import {tag} failed: {proc.stderr.decode(errors='replace')}")


def build_image(
    dockerd: PrivateDockerd,
    tag: str,
    context: Path,
    dockerfile: list[str],
    files: dict[str, Path] | None = None,
    tags: tuple[str, ...] = (),
    prepare: Callable[[Path], None] | None = None,
) -> None:
    """docker build of a context holding ``files`` (name -> source), what ``prepare`` adds, and the Dockerfile."""
    if context.exists():
        shutil.rmtree(context)
    context.mkdir(parents=True)
    for name, source in (files or {}).items():
        dest = context / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), dest)
        else:
            shutil.copy2(source, dest)
    if prepare:
        prepare(context)
    (context / "Dockerfile").write_text("\n".join(dockerfile) + "\n", encoding="utf-8")
    docker(dockerd, "build", "-q", "-t", tag, *[a for t in tags for a in ("-t", t)], str(context))


# --------------------------------------------------------------------------- #
# steps
# --------------------------------------------------------------------------- #
@dataclass
class Step:
    name: str
    images: tuple[str, ...]
    key: dict
    run: Callable[["Context"], None]
    files: tuple[str, ...] = ()  # outputs in the cache, relative
    # images known only once earlier steps ran (the lab's, read from the engine manifests)
    images_after: Callable[[Path], tuple[str, ...]] | None = None
    # later steps build on its files: when it runs, they run again too (as after a step that makes images)
    feeds_later: bool = False

    def all_images(self, directory: Path) -> tuple[str, ...]:
        return self.images + (self.images_after(directory) if self.images_after else ())


@dataclass
class Context:
    directory: Path
    maybe_dockerd: PrivateDockerd | None  # None while only the debootstraps run (build_rootfs)
    versions: dict
    log: Log

    @property
    def dockerd(self) -> PrivateDockerd:
        if self.maybe_dockerd is None:
            raise RuntimeError("kindbed: this build step needs the bed's dockerd, and none was started")
        return self.maybe_dockerd

    @property
    def bin(self) -> Path:
        return self.directory / "bin"

    def testbed_bin(self, name: str) -> Path:
        from testbed.build import cache_dir as testbed_cache

        path = testbed_cache() / "bin" / name
        if not path.is_file():
            raise SystemExit(f"build.py: {name} comes from the testbed; build it first: python tests/testbed/build.py")
        return path

    def work(self, name: str) -> Path:
        return self.directory / "work" / name


def stamp_path(directory: Path, name: str) -> Path:
    return directory / "stamps" / f"image-{name}.json"


def stamp_text(step: Step) -> str:
    return json.dumps({"key": step.key, "images": step.images, "recipe": RECIPE}, sort_keys=True)


def _file_digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def image_steps(versions: dict | None = None) -> list[Step]:
    v = versions or load_versions()
    node = v["kind"]["node"]
    k8s = v["kubernetes"]["version"]
    go = {c.name: c.stamp_key() for c in go_components(v)}
    kindnet_script = HERE / "kindnet-bridge.sh"
    return [
        Step(
            "rootfs-node",
            (),
            {"packages": rootfs.NODE_PACKAGES, "suite": rootfs.SUITE},
            _rootfs_node,
            files=("rootfs/node/etc/os-release",),
        ),
        Step(
            "rootfs-pod",
            (),
            {"packages": rootfs.POD_PACKAGES, "suite": rootfs.SUITE},
            _rootfs_pod,
            files=("rootfs/pod/etc/os-release",),
        ),
        Step("pod-base", (POD_BASE,), {"packages": rootfs.POD_PACKAGES}, _pod_base),
        Step(
            "kind-base",
            (NODE_BASE,),
            {
                "kind": v["kind"]["version"],
                "containerd": go["containerd"],
                "crictl": go["crictl"],
                "packages": rootfs.NODE_PACKAGES,
            },
            _kind_base,
        ),
        Step(
            "components",
            tuple(component_images(v)),
            {"go": go, "pause": node["pause"], "cni": _file_digest(kindnet_script)},
            _components,
        ),
        Step(
            "node-image",
            (node_image_tag(v),),
            {"go": go, "kubernetes": k8s, "images": sorted(component_images(v))},
            _node_image,
        ),
        Step(
            "engine-manifests",
            (),
            {
                "flux": v["flux"]["version"],
                "controllers": [built_version(v, "flux", c.replace("-", "_")) for c in flux_install.CONTROLLERS],
                "recipe": flux_install.RECIPE,
                "argocd": v["argocd"]["install_sha256"],
            },
            _engine_manifests,
            files=("manifests/flux/install.yaml", "manifests/argocd/install.yaml"),
        ),
        # the argocd binary with its UI, for the Argo CD image that lab-images builds next
        Step("argocd-ui", (), argocd_ui.step_key(v), _argocd_ui, files=argocd_ui.expected_files(v), feeds_later=True),
        Step(
            "lab-images",
            (),
            {
                "argocd": v["argocd"]["version"],
                "flux": [built_version(v, "flux", c.replace("-", "_")) for c in flux_install.CONTROLLERS],
                "kustomize": v["argocd"]["kustomize"],
                "packages": rootfs.POD_PACKAGES,
                "recipes": RECIPES,
                "recipe": 2,
            },
            _lab_images,
            images_after=lambda d: tuple(lab_images(d)),
        ),
        # Gitea (issue 20): the product names docker.gitea.com/gitea:<version>-rootless in
        # manifests/gitea (`up --git-server gitea`); these steps build it (lab_images leaves
        # it to them). Last, so building it redoes no other image.
        Step(
            "rootfs-gitea",
            (),
            {"packages": gitea_image.PACKAGES, "suite": rootfs.SUITE},
            _rootfs_gitea,
            files=("rootfs/gitea/etc/os-release",),
        ),
        Step("gitea-ui", (), gitea_ui.step_key(v), _gitea_ui, files=gitea_ui.expected_files(v), feeds_later=True),
        Step("gitea-image", (gitea_image.image_ref(v),), gitea_image.step_key(v), _gitea_image),
        # The release automation's dependencies (issue 23), as wheels for the pod base's Python: the kind
        # tests point $GITOPS_LAB_WHEELS here, so `up --release-automation` builds its image offline.
        Step(
            "automation-wheels",
            (),
            {"requirements": _requirements(), "packages": rootfs.POD_PACKAGES, "suite": rootfs.SUITE},
            _automation_wheels,
            files=(f"{WHEELS}/.complete",),
        ),
        # sops's image, for Argo CD's SOPS plugin (manifests/argocd/images.yaml): last too, for the same reason
        Step(
            "sops-image",
            (sops_image.image_ref(v),),
            {"sops": go_sops(v).stamp_key(), "packages": rootfs.POD_PACKAGES, "recipe": sops_image.RECIPE},
            _sops_image,
        ),
    ]


def go_sops(v: dict):
    """The testbed's sops component (its stamp key names the module and version the image's binary is)."""
    from testbed.build import components as testbed_components

    return next(c for c in testbed_components(v) if c.name == "sops")


def missing(directory: Path) -> list[str]:
    """What the bed still lacks: Go programs and steps whose stamps don't match (files too)."""
    out = []
    for comp in go_components():
        stamp = directory / "stamps" / f"{comp.name}.json"
        if not (
            stamp.is_file()
            and stamp.read_text() == comp.stamp_key()
            and all((directory / "bin" / b).is_file() for b in comp.binaries)
        ):
            out.append(comp.name)
    for step in image_steps():
        stamp = stamp_path(directory, step.name)
        if not (
            stamp.is_file()
            and stamp.read_text() == stamp_text(step)
            and all((directory / f).exists() for f in step.files)
        ):
            out.append(step.name)
    return out


ROOTFS_STEPS = ("rootfs-node", "rootfs-pod", "rootfs-gitea")


def build_rootfs(directory: Path, log: Log) -> None:
    """The debootstraps alone (no dockerd needed): build.py runs them beside the Go builds."""
    ctx = Context(directory, None, load_versions(), log)
    for step in image_steps(ctx.versions):
        if step.name in ROOTFS_STEPS:
            _run_step(ctx, step, fresh=_is_fresh(directory, step, None))


def _is_fresh(directory: Path, step: Step, dockerd: PrivateDockerd | None) -> bool:
    stamp = stamp_path(directory, step.name)
    return (
        stamp.is_file()
        and stamp.read_text() == stamp_text(step)
        and all((directory / f).exists() for f in step.files)
        and (dockerd is None or all(image_exists(dockerd, i) for i in step.all_images(directory)))
    )


def _run_step(ctx: Context, step: Step, fresh: bool) -> bool:
    """Run ``step`` unless fresh; whether it ran."""
    if fresh:
        ctx.log(f"{step.name}: cached")
        return False
    ctx.log(f"{step.name}: building ...")
    t0 = time.monotonic()
    step.run(ctx)
    stamp = stamp_path(ctx.directory, step.name)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(stamp_text(step))
    ctx.log(f"{step.name}: built in {time.monotonic() - t0:.0f}s")
    return True


def build_images(directory: Path, dockerd: PrivateDockerd, log: Log) -> None:
    ctx = Context(directory, dockerd, load_versions(), log)
    redo_rest = False
    all_steps = image_steps(ctx.versions)
    for i, step in enumerate(all_steps):
        fresh = _is_fresh(directory, step, dockerd) and not redo_rest
        feeds = bool(step.images) or step.feeds_later  # later images build on these
        if not fresh and feeds:
            # an interrupted build must not leave later steps looking fresh on top of a new input
            for later in all_steps[i + 1 :]:
                stamp_path(directory, later.name).unlink(missing_ok=True)
        ran = _run_step(ctx, step, fresh=fresh)
        redo_rest = redo_rest or (ran and feeds)


# -- root filesystems ----------------------------------------------------------
def _rootfs_node(ctx: Context) -> None:
    rootfs.debootstrap(
        ctx.directory / "rootfs" / "node",
        rootfs.NODE_PACKAGES,
        ctx.directory / "debcache",
        ctx.directory / "debootstrap-node.log",
    )


def _rootfs_pod(ctx: Context) -> None:
    rootfs.debootstrap(
        ctx.directory / "rootfs" / "pod",
        rootfs.POD_PACKAGES,
        ctx.directory / "debcache",
        ctx.directory / "debootstrap-pod.log",
    )


def _rootfs_gitea(ctx: Context) -> None:
    rootfs.debootstrap(
        ctx.directory / "rootfs" / "gitea",
        gitea_image.PACKAGES,
        ctx.directory / "debcache",
        ctx.directory / "debootstrap-gitea.log",
    )


def _add_user(tree: Path, name: str, uid: int, home: str) -> None:
    """Argo CD's image has its user (ssh and git want a passwd entry for uid 999)."""
    passwd, group = tree / "etc" / "passwd", tree / "etc" / "group"
    if f"\n{name}:" not in "\n" + passwd.read_text():
        with passwd.open("a") as fh:
            fh.write(f"{name}:x:{uid}:{uid}::{home}:/usr/sbin/nologin\n")
        with group.open("a") as fh:
            fh.write(f"{name}:x:{uid}:\n")
    (tree / home.lstrip("/")).mkdir(parents=True, exist_ok=True)
    os.chown(tree / home.lstrip("/"), uid, uid)


def _pod_base(ctx: Context) -> None:
    tree = ctx.directory / "rootfs" / "pod"
    _add_user(tree, "argocd", 999, "/home/argocd")
    import_tree(ctx.dockerd, tree, POD_BASE, [f"ENV {PATH_ENV}"])


# -- the kind node's base image (kind v0.30.0's images/base, by hand) -----------
def _install(src: Path, dest: Path, mode: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    shutil.copyfile(src, dest)
    os.chmod(dest, mode)


def _kind_base(ctx: Context) -> None:
    tree = ctx.directory / "rootfs" / "node"
    files = module_dir("sigs.k8s.io/kind", ctx.versions["kind"]["version"]) / "images" / "base" / "files"
    for src in sorted(p for p in files.rglob("*") if p.is_file()):
        rel = src.relative_to(files)
        executable = rel.parts[0] == "usr" or (rel.parts[:2] == ("kind", "bin"))
        _install(src, tree / rel, 0o755 if executable else 0o644)
    config = tree / "etc" / "containerd" / "config.toml"
    text = config.read_text()
    if lacks_sys_resource():
        # runc in the node cannot lower oom_score_adj without CAP_SYS_RESOURCE: let containerd clamp it
        text = text.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true")
    config.write_text(text)
    for name in ("containerd", "ctr", "containerd-shim-runc-v2", "crictl"):
        _install(ctx.bin / name, tree / "usr" / "local" / "bin" / name, 0o755)
    runc = tree / "usr" / "local" / "sbin" / "runc"
    runc.parent.mkdir(parents=True, exist_ok=True)
    if not runc.is_symlink():
        os.symlink("/usr/sbin/runc", runc)
    spec = json.loads(
        subprocess.run([str(ctx.bin / "ctr"), "oci", "spec"], capture_output=True, text=True, check=True).stdout
    )
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    (tree / "etc" / "containerd" / "cri-base.json").write_text(json.dumps(spec, indent=2))
    cni = tree / "opt" / "cni" / "bin"
    cni.mkdir(parents=True, exist_ok=True)
    for plugin in ("host-local", "loopback", "ptp", "portmap", "bridge"):
        _install(tree / "usr" / "lib" / "cni" / plugin, cni / plugin, 0o755)
    (tree / "etc" / "kubernetes" / "manifests").mkdir(parents=True, exist_ok=True)
    # what kind's Dockerfile does with systemd: no default services, no kmsg, init is systemd
    for pattern in (
        "lib/systemd/system/multi-user.target.wants/*",
        "etc/systemd/system/*.wants/*",
        "lib/systemd/system/local-fs.target.wants/*",
        "lib/systemd/system/sockets.target.wants/*udev*",
        "lib/systemd/system/sockets.target.wants/*initctl*",
        "lib/systemd/system/basic.target.wants/*",
        "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",
    ):
        for path in tree.glob(pattern):
            path.unlink()
    journald = tree / "etc" / "systemd" / "journald.conf"
    if "ReadKMsg=no" not in journald.read_text():
        with journald.open("a") as fh:
            fh.write("ReadKMsg=no\n")
    init = tree / "sbin" / "init"
    if init.exists() or init.is_symlink():
        init.unlink()
    os.symlink("/lib/systemd/systemd", init)
    for unit in ("kubelet.service", "containerd.service", "undo-mount-hacks.service"):
        subprocess.run(["chroot", str(tree), "systemctl", "enable", unit], check=True, capture_output=True)
    subprocess.run(
        ["chroot", str(tree), "systemctl", "mask", "systemd-binfmt.service"], check=True, capture_output=True
    )
    (tree / "etc" / "machine-id").write_text("")
    import_tree(
        ctx.dockerd,
        tree,
        NODE_BASE_OS,
        ["ENV container=docker", f"ENV {PATH_ENV}", 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]'],
    )
    build_image(ctx.dockerd, NODE_BASE, ctx.work("kind-base"), [f"FROM {NODE_BASE_OS}", "STOPSIGNAL SIGRTMIN+3"])


# -- component images under their upstream names --------------------------------
def component_images(v: dict) -> dict[str, str]:
    """Upstream image name -> what it holds."""
    node, k8s = v["kind"]["node"], v["kubernetes"]["version"]
    images = {
        f"registry.k8s.io/{c}:{k8s}": c
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
    }
    images[f"registry.k8s.io/etcd:{node['etcd_image_tag']}"] = "etcd"
    images[f"registry.k8s.io/coredns/coredns:{node['coredns']}"] = "coredns"
    images[f"registry.k8s.io/pause:{node['pause']}"] = "pause"
    images["registry.k8s.io/pause:3.10"] = "pause"  # kind's containerd config names this sandbox image
    for key, ref in node["images"].items():
        images[ref] = key
    return images


def _components(ctx: Context) -> None:
    pause = ctx.bin / "pause"
    kube_source = module_dir("k8s.io/kubernetes", ctx.versions["kubernetes"]["version"])
    subprocess.run(
        [
            "gcc",
            "-Os",
            "-static",
            "-o",
            str(pause),
            f"-DVERSION={ctx.versions['kind']['node']['pause']}",
            str(kube_source / "build" / "pause" / "linux" / "pause.c"),
        ],
        check=True,
    )
    for ref, what in component_images(ctx.versions).items():
        work = ctx.work("img-" + hashlib.sha256(ref.encode()).hexdigest()[:10])
        if what in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
            lines = ["FROM scratch", f"COPY {what} /usr/local/bin/{what}", f"ENV {PATH_ENV}"]
            build_image(ctx.dockerd, ref, work, lines, {what: ctx.bin / what})
        elif what == "kube-proxy":
            lines = [f"FROM {POD_BASE}", "COPY kube-proxy /usr/local/bin/kube-proxy"]
            build_image(ctx.dockerd, ref, work, lines, {"kube-proxy": ctx.bin / "kube-proxy"})
        elif what in ("coredns", "pause"):
            lines = ["FROM scratch", f"COPY {what} /{what}", f'ENTRYPOINT ["/{what}"]']
            build_image(ctx.dockerd, ref, work, lines, {what: ctx.bin / what})
        elif what == "kindnetd":
            # Not kindnetd (its source is not served here): a one-node CNI configurator, see README.md
            lines = [
                f"FROM {POD_BASE}",
                "COPY kindnet-bridge.sh /usr/local/bin/kindnet-bridge",
                'CMD ["/usr/local/bin/kindnet-bridge"]',
            ]
            build_image(ctx.dockerd, ref, work, lines, {"kindnet-bridge.sh": HERE / "kindnet-bridge.sh"})
        elif what == "local_path_provisioner":
            lines = [
                f"FROM {POD_BASE}",
                "COPY local-path-provisioner /usr/local/bin/local-path-provisioner",
                'ENTRYPOINT ["/usr/local/bin/local-path-provisioner"]',
            ]
            build_image(ctx.dockerd, ref, work, lines, {"local-path-provisioner": ctx.bin / "local-path-provisioner"})
        elif what == "local_path_helper":
            docker(ctx.dockerd, "tag", POD_BASE, ref)
        else:
            raise SystemExit(f"build.py: no recipe for {ref}")


# -- the node image: kind build node-image from a kubernetes-server tarball -----
def qualified(ref: str) -> str:
    """docker.io/library/x:tag for x:tag, as kind's builder compares fully qualified names."""
    name = ref.rsplit(":", 1)[0]
    first = name.split("/")[0]
    if "." in first or ":" in first or first == "localhost":
        return ref
    return ("docker.io/library/" if "/" not in name else "docker.io/") + ref


def save_qualified(dockerd: PrivateDockerd, refs: list[str], dest: Path) -> None:
    """docker save, with every tag fully qualified and the index files first (kind's loader reads them first)."""
    raw = dest.with_suffix(".raw.tar")
    docker(dockerd, "save", "-o", str(raw), *refs)
    with tarfile.open(raw) as src:
        members = src.getmembers()
        # a regular file always has a reader
        data = {m.name: src.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(data["manifest.json"])
    for entry in manifest:
        entry["RepoTags"] = [qualified(t) for t in entry.get("RepoTags") or []]
    data["manifest.json"] = json.dumps(manifest).encode()
    if "repositories" in data:
        repos = json.loads(data["repositories"])
        data["repositories"] = json.dumps(
            {qualified(k + ":x").rsplit(":", 1)[0]: tags for k, tags in repos.items()}
        ).encode()
    first = [n for n in ("repositories", "manifest.json") if n in data]
    by_name = {m.name: m for m in members}
    with tarfile.open(dest, "w") as out:
        for name in first + [m.name for m in members if m.name not in first]:
            member = by_name[name]
            if member.isfile():
                member.size = len(data[name])
                out.addfile(member, io.BytesIO(data[name]))
            else:
                out.addfile(member)
    raw.unlink()


def _node_image(ctx: Context) -> None:
    k8s = ctx.versions["kubernetes"]["version"]
    work = ctx.work("node-image")
    if work.exists():
        shutil.rmtree(work)
    server_bin = work / "kubernetes" / "server" / "bin"
    server_bin.mkdir(parents=True)
    (work / "kubernetes" / "version").write_text(k8s + "\n")
    for name in ("kubeadm", "kubelet", "kubectl"):
        shutil.copy2(ctx.bin / name, server_bin / name)
    images = component_images(ctx.versions)
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        save_qualified(ctx.dockerd, [f"registry.k8s.io/{name}:{k8s}"], server_bin / f"{name}.tar")
    # kind fetches every required image that is not in these archives: kube-proxy.tar carries the rest
    rest = [
        ref
        for ref, what in images.items()
        if what not in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    save_qualified(ctx.dockerd, rest, server_bin / "kube-proxy.tar")
    tarball = work / "kubernetes-server-linux-amd64.tar.gz"
    with gzip.open(tarball, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        tar.add(work / "kubernetes", arcname="kubernetes")
    env = dict(os.environ, **ctx.dockerd.env())
    log = ctx.directory / "kind-build-node-image.log"
    with log.open("wb") as out:
        proc = subprocess.run(
            [
                str(ctx.bin / "kind"),
                "build",
                "node-image",
                "--type",
                "file",
                str(tarball),
                "--base-image",
                NODE_BASE,
                "--image",
                node_image_tag(ctx.versions),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0:
        raise SystemExit(f"build.py: kind build node-image failed; see {log}")
    shutil.rmtree(work)


# -- every image the lab runs, under the names the product's manifests use -------
# Repository -> recipe. The list of images itself comes from the product (what
# `gitops-lab images list` names), so a new image in a manifest fails the build
# here until it has a recipe, instead of failing a learner's first `up`.
RECIPES = {
    "quay.io/argoproj/argocd": "argocd",
    "public.ecr.aws/docker/library/redis": "redis",
    "ghcr.io/fluxcd/source-controller": "source-controller",
    "ghcr.io/fluxcd/kustomize-controller": "kustomize-controller",
    "ghcr.io/fluxcd/notification-controller": "notification-controller",
    "docker.io/library/buildpack-deps": "git-and-python",
    "docker.io/library/python": "git-and-python",
}
# Gitea's image has steps of its own (gitea-ui, gitea-image): see build_gitea_image


def engine_manifest(directory: Path, engine: str) -> Path:
    """The install.yaml the bed hands to `gitops-lab up --engine-manifests` (the classroom folder)."""
    return directory / "manifests" / engine / "install.yaml"


def lab_image_refs(directory: Path) -> list[str]:
    """What the product runs, without the kind node: environments, Git server, both engines' installs."""
    from gitops_lab.adapters.gitserver.incluster import image_references
    from gitops_lab.adapters.images import engine_images, environment_images
    from gitops_lab.resources import environments_template

    refs = environment_images(environments_template()) + list(image_references())
    for engine in ("argocd", "flux"):
        refs += engine_images(engine, engine_manifest(directory, engine).read_text(encoding="utf-8"))
    return sorted(set(refs))


def lab_images(directory: Path) -> dict[str, str]:
    """name:tag -> recipe, for every image the product names (digests dropped: a local build has none)."""
    out = {}
    for ref in lab_image_refs(directory):
        tagged = ref.split("@", 1)[0]
        repository = tagged.rsplit(":", 1)[0]
        if repository == gitea_image.REPOSITORY:
            expected = gitea_image.image_ref(load_versions())
            if tagged != expected:
                raise SystemExit(
                    f"build.py: the product runs {ref}, but the kind bed builds Gitea as {expected} "
                    f"(versions.yaml gitea.version); make the two agree"
                )
            continue  # the gitea-image step builds it
        if repository == sops_image.REPOSITORY:
            expected = sops_image.image_ref(load_versions())
            if tagged != expected:
                raise SystemExit(
                    f"build.py: the product runs {ref}, but the kind bed builds sops as {expected} "
                    f"(versions.yaml sops.version); make the two agree"
                )
            continue  # the sops-image step builds it
        if repository not in RECIPES:
            raise SystemExit(
                f"build.py: the product runs {ref}, which the kind bed has no recipe for; "
                f"add one to tests/kindbed/steps.py RECIPES"
            )
        out[tagged] = RECIPES[repository]
    return out


def _lab_images(ctx: Context) -> None:
    for ref, what in lab_images(ctx.directory).items():
        work = ctx.work("img-" + hashlib.sha256(ref.encode()).hexdigest()[:10])
        if what == "argocd":
            # What Argo CD's own Dockerfile puts in the image, from its module at the pinned tag.
            source = module_dir("github.com/argoproj/argo-cd/v3", ctx.versions["argocd"]["version"])
            # with its UI embedded where the argocd-ui step could build it (see argocd_ui.py)
            argocd = argocd_ui.binary(ctx.directory)
            files = {
                "usr/local/bin/argocd": argocd if argocd.is_file() else ctx.testbed_bin("argocd"),
                "usr/local/bin/kustomize": ctx.testbed_bin("kustomize"),
                "usr/local/bin/gpg-wrapper.sh": source / "hack" / "gpg-wrapper.sh",
                "usr/local/bin/git-verify-wrapper.sh": source / "hack" / "git-verify-wrapper.sh",
                "usr/local/bin/entrypoint.sh": source / "entrypoint.sh",
            }
            links = {
                **{f"usr/local/bin/{role}": "argocd" for role in ARGOCD_ROLES},
                "usr/local/bin/uid_entrypoint.sh": "entrypoint.sh",
                "etc/ssh/ssh_known_hosts": "/app/config/ssh/ssh_known_hosts",
            }

            def prepare(context: Path, links: dict[str, str] = links) -> None:
                for link, target in links.items():
                    (context / link).parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(target, context / link)
                for folder in ("app/config/tls", "app/config/gpg/source", "app/config/gpg/keys", "app/config/ssh"):
                    (context / folder).mkdir(parents=True, exist_ok=True)
                (context / "app" / "config" / "ssh" / "ssh_known_hosts").write_text("")
                for path in context.rglob("*"):
                    if not path.is_symlink():
                        executable = path.is_dir() or path.parent.name == "bin"
                        path.chmod(0o755 if executable else 0o644)

            build_image(
                ctx.dockerd,
                ref,
                work,
                [
                    f"FROM {POD_BASE}",
                    "COPY usr /usr",
                    "COPY etc /etc",
                    "COPY app /app",
                    "ENV USER=argocd HOME=/home/argocd",
                    "USER 999",
                    "WORKDIR /home/argocd",
                    'ENTRYPOINT ["/usr/bin/tini", "--"]',
                ],
                files,
                prepare=prepare,
            )
        elif what == "redis":
            build_image(
                ctx.dockerd, ref, work, [f"FROM {POD_BASE}", "WORKDIR /tmp", 'ENTRYPOINT ["/usr/bin/redis-server"]']
            )
        elif what in flux_install.CONTROLLERS:
            build_image(
                ctx.dockerd,
                ref,
                work,
                [
                    f"FROM {POD_BASE}",
                    f"COPY {what} /usr/local/bin/{what}",
                    "USER 65534:65534",
                    f'ENTRYPOINT ["/usr/bin/tini", "--", "{what}"]',
                ],
                {what: ctx.testbed_bin(what)},
            )
        elif what == "git-and-python":
            docker(ctx.dockerd, "tag", POD_BASE, ref)
        else:
            raise SystemExit(f"build.py: no recipe for {ref}")


def build_gitea_image(ctx: Context, ref: str) -> None:
    """Gitea's rootless image under ``ref``, as gitea_image.py lays it out: the binary with the
    frontend embedded where the gitea-ui step built it, else the testbed's with its share/gitea."""
    tree = ctx.directory / "rootfs" / "gitea"
    gitea_image.prepare_tree(tree)
    import_tree(ctx.dockerd, tree, gitea_image.BASE, [f"ENV {PATH_ENV}"])
    module = module_dir(ctx.versions["gitea"]["module"], ctx.versions["gitea"]["version"])
    embedded = gitea_ui.binary(ctx.directory)
    if embedded.is_file():
        files = gitea_image.context_files(module, embedded, None)
    else:
        share = ctx.testbed_bin("gitea").parent.parent / "share" / "gitea"
        files = gitea_image.context_files(module, ctx.testbed_bin("gitea"), share)
    work = ctx.work("img-" + hashlib.sha256(ref.encode()).hexdigest()[:10])
    build_image(
        ctx.dockerd,
        ref,
        work,
        gitea_image.dockerfile(embedded.is_file()),
        files,
        prepare=gitea_image.fix_modes,
    )


WHEELS = "wheels"


def _requirements() -> list[str]:
    from gitops_lab.adapters.release_image import requirements

    return requirements()


def _automation_wheels(ctx: Context) -> None:
    """pip download (the product's own command) for the Python and machine the pod base has."""
    from gitops_lab.adapters.release_image import download_wheels

    script = "import platform, sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}', platform.machine())"
    python, machine = docker(ctx.dockerd, "run", "--rm", POD_BASE, "python3", "-c", script).split()
    folder = ctx.directory / WHEELS
    shutil.rmtree(folder, ignore_errors=True)
    download_wheels(python, machine, folder)


def _sops_image(ctx: Context) -> None:
    ref = sops_image.image_ref(ctx.versions)
    work = ctx.work("img-" + hashlib.sha256(ref.encode()).hexdigest()[:10])
    build_image(ctx.dockerd, ref, work, sops_image.dockerfile(POD_BASE), {"sops": ctx.testbed_bin("sops")})


def _gitea_image(ctx: Context) -> None:
    build_gitea_image(ctx, gitea_image.image_ref(ctx.versions))


def _gitea_ui(ctx: Context) -> None:
    gitea_ui.build(ctx.directory, ctx.versions, os.cpu_count() or 2, ctx.log)


def _argocd_ui(ctx: Context) -> None:
    argocd_ui.build(ctx.directory, ctx.versions, os.cpu_count() or 2, ctx.log)


def _engine_manifests(ctx: Context) -> None:
    """Argo CD's install.yaml from its Go module (byte-identical to the pinned SHA-256); Flux's assembled."""
    argocd = ctx.versions["argocd"]
    source = module_dir("github.com/argoproj/argo-cd/v3", argocd["version"]) / "manifests" / "install.yaml"
    data = source.read_bytes()
    if hashlib.sha256(data).hexdigest() != argocd["install_sha256"]:
        raise SystemExit(f"build.py: {source} does not match the pinned install_sha256 of versions.yaml")
    dest = engine_manifest(ctx.directory, "argocd")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    flux = engine_manifest(ctx.directory, "flux")
    flux_install.assemble(ctx.versions, flux, ctx.testbed_bin("kustomize"), ctx.work("flux-install"))
    # The product accepts a local Flux manifest only with this digest (or the release asset's).
    if hashlib.sha256(flux.read_bytes()).hexdigest() != ctx.versions["flux"]["module_built_sha256"]:
        raise SystemExit(f"build.py: {flux} does not match the module_built_sha256 of versions.yaml's flux")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run tests/kindbed/build.py")

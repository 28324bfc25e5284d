"""The release automation's image, built from this installed package on the learner's Docker.

No registry publishes it, so `up --release-automation` builds it here and loads
it into kind. It is the model server's Python image (versions.yaml
``images.model_server``, preloaded with the lab) plus:

- ``/opt/gitops-lab/site``: this package as installed (its files, the data
  folders it reads: environments, manifests, labs) and its dependencies,
  unpacked from wheels for the image's own Python and machine (no pip runs in
  the image). The wheels come from ``$GITOPS_LAB_WHEELS`` when set (a folder,
  nothing downloaded: offline), else ``pip download --only-binary :all:`` from
  PyPI into the cache, once per Python version and machine;
- git (the release's every read and write): the base's own, else installed
  from Debian when the image is built (the one step that needs Debian's mirror);
- the renderer the policy gate needs (kustomize, else kubectl), copied from this
  machine when it is a Linux binary for the image's machine. Without one the
  image has none, and every promotion the automation tries stops at the policy
  gate with the renderer's error: it never passes unrendered.

The tag carries a hash of what goes in, so a changed package builds a new image.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import gitops_lab
from gitops_lab.adapters.docker import docker_client, has_image, node_platform
from gitops_lab.adapters.images import ImageError, ensure_image
from gitops_lab.adapters.renderer import found_renderer
from gitops_lab.cache import cache_root
from gitops_lab.deadline import current_deadline
from gitops_lab.errors import PreflightError
from gitops_lab.processes import run_bounded
from gitops_lab.reporter import Reporter
from gitops_lab.resources import data_dir
from gitops_lab.versions import pinned

REPOSITORY = "gitops-lab.local/release-automation"
WHEELS_VAR = "GITOPS_LAB_WHEELS"
DATA_FOLDERS = ("environments", "manifests", "labs")
SITE = "/opt/gitops-lab/site"
#: The bound of the wheels' download when the command set no deadline.
DOWNLOAD_SECONDS = 600.0
#: ELF e_machine of each Docker architecture name the image may have.
ELF_MACHINES = {"x86_64": 62, "aarch64": 183}


@dataclass(frozen=True)
class BaseImage:
    ref: str
    python: str  # "3.12"
    machine: str  # "x86_64", "aarch64"
    has_git: bool


@dataclass
class ImageContents:
    wheels: list[Path]
    tools: dict[str, Path] = field(default_factory=dict)  # name in /usr/local/bin -> file here
    notes: list[str] = field(default_factory=list)


def base_ref() -> str:
    return str(pinned()["images"]["model_server"])


def probe_base(client, ref: str) -> BaseImage:
    """The base image's Python version, machine, and whether it has git (one short container)."""
    script = "import platform, shutil, sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}', platform.machine(), bool(shutil.which('git')))"
    out = client.containers.run(ref, ["python3", "-c", script], remove=True).decode().split()
    return BaseImage(ref, out[0], out[1], out[2] == "True")


def requirements() -> list[str]:
    """This package's runtime requirements (no extras), as its metadata names them."""
    found = importlib.metadata.requires("gitops-lab") or []
    return [r for r in found if "extra ==" not in r]


def wheels_for(python: str, machine: str, reporter: Reporter) -> list[Path]:
    """Wheels of every requirement for the image's Python and machine: $GITOPS_LAB_WHEELS's, else
    downloaded once into the cache (a folder marked complete only after pip finished)."""
    explicit = os.environ.get(WHEELS_VAR)
    folder = Path(explicit) if explicit else cache_root() / "wheels" / f"cp{python.replace('.', '')}-{machine}"
    if explicit or (folder / ".complete").is_file():
        wheels = sorted(folder.glob("*.whl"))
        if not wheels:
            raise PreflightError(
                f"${WHEELS_VAR} names {folder}, which holds no wheels",
                fix=f"fill it with `pip download --only-binary :all: --python-version {python} --dest {folder} "
                "gitops-lab`'s requirements, or unset it",
            )
        return wheels
    with reporter.step(f"Downloading the automation's dependencies for Python {python} ({machine})") as step:
        download_wheels(python, machine, folder)
        step.done(str(folder))
    return sorted(folder.glob("*.whl"))


def download_wheels(python: str, machine: str, folder: Path) -> None:
    """``pip download`` of every requirement, binary wheels only, for that Python and machine; ``.complete``
    marks the folder done (the kind bed fills its own folder with this too)."""
    folder.mkdir(parents=True, exist_ok=True)
    abi = f"cp{python.replace('.', '')}"
    platforms = [f"manylinux{tag}_{machine}" for tag in ("2014", "_2_17", "_2_28")]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:"]
    command += ["--python-version", python, "--implementation", "cp", "--abi", abi]
    command += [arg for p in platforms for arg in ("--platform", p)]
    command += ["--dest", str(folder), *requirements()]
    deadline = current_deadline()
    try:
        done = run_bounded(command, timeout=deadline.remaining() if deadline else DOWNLOAD_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise PreflightError(
            "the download of the release automation's dependencies from PyPI did not end in time",
            fix=f"check the network, or put the wheels in a folder and point ${WHEELS_VAR} at it",
        ) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise PreflightError(
            f"cannot download the release automation's dependencies from PyPI: {last}",
            fix=f"check the network, or put the wheels in a folder and point ${WHEELS_VAR} at it",
        )
    (folder / ".complete").write_text("")


def linux_binary(path: Path, machine: str) -> bool:
    """Whether ``path`` is an ELF executable for ``machine`` (so it runs in the image)."""
    try:
        head = path.read_bytes()[:20]
    except OSError:
        return False
    return head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == ELF_MACHINES.get(machine)


def renderer_tool(machine: str) -> tuple[dict[str, Path], list[str]]:
    """The policy gate's renderer from this machine, when it runs in the image; else a note why not."""
    command = found_renderer()
    if command is None:
        return {}, ["this machine has neither kustomize nor kubectl, so the image has no renderer"]
    binary = Path(command.split()[0])
    if not linux_binary(binary, machine):
        return {}, [f"{binary} is not a Linux {machine} binary, so the image has no renderer"]
    return {binary.name: binary}, []


def unpack_wheel(wheel: Path, site: Path) -> None:
    """A wheel installed by hand: its files into ``site``, its .data/purelib and platlib too."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            parts = info.filename.split("/")
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts, headers: nothing the automation runs
                parts = parts[2:]
            if info.is_dir() or not parts[-1]:
                continue
            target = site.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))


def copy_package(site: Path) -> None:
    """This package's files (bytecode left out), with the data folders it reads as a wheel ships them."""
    package = Path(gitops_lab.__file__).resolve().parent
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(package, site / "gitops_lab", ignore=ignore, dirs_exist_ok=True)
    for name in DATA_FOLDERS:
        try:
            shutil.copytree(data_dir(name), site / "gitops_lab" / "_data" / name, ignore=ignore, dirs_exist_ok=True)
        except FileNotFoundError:
            continue


def dockerfile(base: BaseImage, tools: dict[str, Path], digest: str) -> str:
    lines = [f"FROM {base.ref}", f"COPY site {SITE}"]
    if tools:
        lines.append("COPY tools/ /usr/local/bin/")
    if not base.has_git:
        lines.append(
            "RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates "
            "&& rm -rf /var/lib/apt/lists/*"
        )
    lines += [
        f"ENV PYTHONPATH={SITE} PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/work",
        "WORKDIR /work",
        f'LABEL gitops-lab.io/content="{digest}"',
        "USER 65532:65532",
        'ENTRYPOINT ["python3", "-m", "gitops_lab.incluster"]',
    ]
    return "\n".join(lines) + "\n"


def assemble(folder: Path, base: BaseImage, contents: ImageContents) -> str:
    """The build context in ``folder``; returns its content digest (what the tag carries)."""
    site = folder / "site"
    for wheel in contents.wheels:
        unpack_wheel(wheel, site)
    copy_package(site)
    for name, source in contents.tools.items():
        (folder / "tools").mkdir(exist_ok=True)
        shutil.copy2(source, folder / "tools" / name)
    digest = _digest(folder, base)
    (folder / "Dockerfile").write_text(dockerfile(base, contents.tools, digest))
    return digest


def _digest(folder: Path, base: BaseImage) -> str:
    hashed = hashlib.sha256(f"{base}\n".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        hashed.update(str(path.relative_to(folder)).encode() + b"\0")
        hashed.update(path.read_bytes())
    return hashed.hexdigest()


def build_release_image(reporter: Reporter, client=None) -> str:
    """Build the automation's image (unless this very content is built already); return its reference."""
    client = client or docker_client()
    base_pin = base_ref()
    ensure_image(client, base_pin, node_platform(client))
    base_local = _usable_ref(client, base_pin)
    base = probe_base(client, base_local)
    tools, notes = renderer_tool(base.machine)
    for note in notes:
        reporter.warn(f"{note}: the automation's policy gate will refuse every promotion (docs/release-automation.md)")
    contents = ImageContents(wheels_for(base.python, base.machine, reporter), tools, notes)
    with tempfile.TemporaryDirectory(prefix="gitops-lab-image-") as tmp:
        digest = assemble(Path(tmp), base, contents)
        ref = f"{REPOSITORY}:{gitops_lab.__version__}-{digest[:12]}"
        if has_image(client, ref):
            reporter.info(f"{ref} is built already")
            return ref
        with reporter.step(f"Building {ref} (Python {base.python}, {base.machine})") as step:
            try:
                client.images.build(path=tmp, tag=ref, rm=True, pull=False)
            except Exception as exc:  # docker.errors.BuildError/APIError: one line either way
                raise ImageError(
                    f"cannot build the release automation's image {ref}: {_build_message(exc)}",
                    fix="check Docker (`docker info`); without git in the base image, the build needs Debian's mirror",
                ) from exc
            step.done(ref)
    return ref


def _usable_ref(client, pinned_ref: str) -> str:
    """The pinned reference if Docker has it by digest, else its name:tag (a local or loaded image)."""
    if has_image(client, pinned_ref):
        return pinned_ref
    return pinned_ref.split("@", 1)[0]


def _build_message(exc: BaseException) -> str:
    log = getattr(exc, "build_log", None)
    if log:
        lines = [str(item.get("stream") or item.get("error") or "").strip() for item in log if isinstance(item, dict)]
        lines = [line for line in lines if line]
        if lines:
            return lines[-1]
    return str(getattr(exc, "msg", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__

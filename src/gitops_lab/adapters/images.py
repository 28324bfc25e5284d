"""The images the lab needs, derived from what it deploys; pull them once, load them into kind.

Nothing here is a hand-kept list. The images come from:
  - the `image:` fields of the environments template (base and overlays, with
    the overlays' kustomize `images:` overrides applied);
  - the engine's pinned install manifest in the managed-install cache, when it
    has been downloaded (`up` downloads it; Flux keeps only the controllers the
    lab uses, as its install does);
  - the rendered in-cluster Git server;
  - the kind node image (pulled, never loaded: it is the node itself).

`pull` fetches each image once for the node's platform with the docker SDK;
`load` writes them with `docker save --platform` and loads the archive with
`kind load image-archive`, which avoids the Docker Desktop containerd-store
problems of `kind load docker-image`. `up --preload` calls both.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import yaml

from gitops_lab.adapters.cluster.node_images import qualified_image
from gitops_lab.adapters.docker import RETRY_LONGER, docker_client, has_image, node_platform
from gitops_lab.adapters.engines import ENGINES, engine_for
from gitops_lab.adapters.engines.release import cached_manifest_path
from gitops_lab.adapters.forge.incluster import image_references as forge_image_references
from gitops_lab.adapters.gitserver.incluster import image_references
from gitops_lab.deadline import Deadline, current_deadline, within_deadline
from gitops_lab.errors import ClusterError, WaitTimeout
from gitops_lab.processes import run_bounded
from gitops_lab.reporter import Reporter
from gitops_lab.resources import environments_template
from gitops_lab.versions import pinned

if TYPE_CHECKING:
    from gitops_lab.adapters.engines.base import Engine

#: The longest a `docker save` of the lab's images may take (less when the command's deadline is nearer).
SAVE_SECONDS = 30 * 60
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"}


class ImageError(ClusterError):
    """An image could not be pulled, saved or loaded."""


@dataclass(frozen=True)
class LabImage:
    ref: str
    source: str  # "environments", "engine:argocd", "gitserver", "forge", "kind-node"
    load: bool = True  # False for the kind node image

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.ref, "source": self.source, "load": self.load}


# --------------------------------------------------------------------------- #
# Deriving the list
# --------------------------------------------------------------------------- #
def images_in(obj: Any) -> Iterator[str]:
    """Every container and initContainer image in a manifest object, depth first."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        yield container["image"]
            else:
                yield from images_in(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from images_in(item)


def _split_ref(ref: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference."""
    name, _, digest = ref.partition("@")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def apply_kustomize_images(ref: str, overrides: list[dict[str, Any]]) -> str:
    """What kustomize's `images:` transformer makes of ``ref``."""
    name, tag, digest = _split_ref(ref)
    for rule in overrides:
        if rule.get("name") != name:
            continue
        name = rule.get("newName", name)
        if "digest" in rule:
            tag, digest = None, rule["digest"]
        elif "newTag" in rule:
            tag, digest = str(rule["newTag"]), None
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def environment_images(root: Path) -> list[str]:
    """Images of the environments template: each overlay's resources with its image overrides."""
    found: list[str] = []
    base_images = _folder_images(root / "base")
    overlays = sorted(p for p in (root / "overlays").glob("*") if p.is_dir()) if (root / "overlays").is_dir() else []
    if not overlays:
        return sorted(set(base_images))
    for overlay in overlays:
        overrides: list[dict[str, Any]] = []
        for folder in (root / "base", overlay):
            k = _kustomization(folder)
            overrides += k.get("images") or []
        for ref in base_images + _folder_images(overlay):
            found.append(apply_kustomize_images(ref, overrides))
    return sorted(set(found))


def _kustomization(folder: Path) -> dict[str, Any]:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (folder / name).is_file():
            return yaml.safe_load((folder / name).read_text(encoding="utf-8")) or {}
    return {}


def _folder_images(folder: Path) -> list[str]:
    refs: list[str] = []
    for path in sorted(folder.glob("*.y*ml")):
        if path.name.startswith("kustomization"):
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") in WORKLOAD_KINDS:
                refs.extend(images_in(doc))
    return refs


def engine_manifest_path(engine: str) -> Path | None:
    """The managed-install cache's copy of the engine's pinned release manifest, if downloaded."""
    path = cached_manifest_path(engine, pinned()[engine]["version"])
    return path if path.is_file() else None


def engine_images(engine: str | Engine, manifest_text: str) -> list[str]:
    """Images of what the lab installs of an engine's release (Flux: only its two controllers).

    ``engine`` is an engine adapter, or an engine's name.
    """
    refs: list[str] = []
    for doc in _adapter(engine).lab_manifests(manifest_text):
        if doc.get("kind") in WORKLOAD_KINDS:
            refs.extend(images_in(doc))
    return sorted(set(refs))


def _adapter(engine: str | Engine) -> Engine:
    return engine_for(engine) if isinstance(engine, str) else engine


def lab_images(
    engines: Iterable[str | Engine] = ENGINES,
    environments: Path | None = None,
    include_node: bool = True,
    git_servers: Iterable[str] = ("builtin", "gitea"),
) -> tuple[list[LabImage], list[str]]:
    """The lab's images, and notes on what could not be derived (an engine not downloaded yet).

    ``engines``: engine adapters (`up` passes the one it installs), or engines' names; ``git_servers``:
    the in-cluster Git servers whose images count (`up` passes the one it starts).
    """
    git_servers = tuple(git_servers)
    images: list[LabImage] = []
    notes: list[str] = []
    if include_node:
        images.append(LabImage(pinned()["kind"]["node_image"], "kind-node", load=False))
    for ref in environment_images(environments or environments_template()):
        images.append(LabImage(ref, "environments"))
    if "builtin" in git_servers:
        images.extend(LabImage(ref, "gitserver") for ref in image_references())
    if "gitea" in git_servers:
        images.extend(LabImage(ref, "forge") for ref in forge_image_references())
    for engine in map(_adapter, engines):
        path = engine_manifest_path(engine.name)
        if path is None:
            notes.append(
                f"{engine.name}: its release manifest is not in the cache yet; `gitops-lab up --engine "
                f"{engine.name}` downloads it, then its images are listed here"
            )
            continue
        for ref in engine_images(engine, path.read_text(encoding="utf-8")):
            images.append(LabImage(ref, f"engine:{engine.name}"))
    unique: dict[str, LabImage] = {}  # the first of each reference, in order
    for image in images:
        unique.setdefault(image.ref, image)
    return list(unique.values()), notes


# --------------------------------------------------------------------------- #
# Docker: pull, save (through the Docker adapter's client)
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class PullResult:
    ref: str
    action: str  # "present", "pulled" or "local tag" (digest-pinned, offline, only its tag is here)


OFFLINE_NOTE = (
    "{tag} is here but not by its pinned digest (an image loaded from an archive, or built "
    "locally, keeps no registry digest) and the registry is out of reach: using the local image"
)


def _pull(client, ref: str, platform: str) -> None:
    name, tag, digest = _split_ref(ref)
    # The SDK takes the digest in place of the tag: repository@sha256:...
    client.images.pull(
        f"{name}@{digest}" if digest else name, tag=None if digest else (tag or "latest"), platform=platform
    )
    if digest and tag:
        # Keep the tag too, so `docker save` writes it and the node finds name:tag.
        client.api.tag(f"{name}@{digest}", name, tag)


def ensure_image(client, ref: str, platform: str) -> PullResult:
    """Have ``ref`` in Docker: present, pulled, or, offline, its tag already here.

    A digest-pinned image that Docker holds only by its tag (`docker load` of an
    archive drops registry digests) is pulled by digest when the registry can be
    reached; when it cannot, the local image is used and the result says so.
    """
    from docker.errors import APIError

    if has_image(client, ref):
        return PullResult(ref, "present")
    name, tag, digest = _split_ref(ref)
    local_tag = f"{name}:{tag}" if digest and tag else None
    try:
        _pull(client, ref, platform)
    except APIError as exc:
        if local_tag and has_image(client, local_tag):
            return PullResult(ref, "local tag")
        raise ImageError(
            f"cannot pull {ref} for {platform}: {exc.explanation or exc}",
            fix="check the network or proxy (Docker Desktop: Settings > Resources > Proxies), "
            "or pull where there is access and carry the images over with `docker save`/`docker load`",
        ) from exc
    return PullResult(ref, "pulled")


def pull_images(
    images: Iterable[LabImage], reporter: Reporter, client=None, platform: str | None = None
) -> list[PullResult]:
    """Pull each image once for the node's platform; images already present are left alone."""
    client = client or docker_client()
    platform = platform or node_platform(client)
    results = []
    for image in images:
        if (deadline := current_deadline()) is not None and deadline.expired:
            raise WaitTimeout(f"pulling {image.ref} did not start within {deadline.describe()}", fix=RETRY_LONGER)
        with reporter.step(f"Pulling {image.ref} ({platform})") as step:
            result = ensure_image(client, image.ref, platform)
            if result.action == "local tag":
                name, tag, _ = _split_ref(image.ref)
                reporter.warn(OFFLINE_NOTE.format(tag=f"{name}:{tag}"))
            step.done({"present": "already present", "pulled": "pulled", "local tag": "local tag"}[result.action])
            results.append(result)
    return results


def save_images(refs: list[str], archive: Path, platform: str, client=None) -> str:
    """Write ``refs`` into one `docker save` archive; returns how ("cli --platform" or "sdk")."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    docker_cli = shutil.which("docker")
    if docker_cli:
        attempts = [["--platform", platform], []] if _cli_save_supports_platform(docker_cli) else [[]]
        for extra in attempts:
            seconds = within_deadline(SAVE_SECONDS)
            try:
                if seconds <= 0:
                    raise subprocess.TimeoutExpired(docker_cli, seconds)
                done = run_bounded([docker_cli, "save", *extra, "-o", str(archive), *refs], timeout=seconds)
            except subprocess.TimeoutExpired as exc:
                archive.unlink(missing_ok=True)
                raise WaitTimeout(
                    f"`docker save` of {len(refs)} image(s) did not finish within {Deadline(seconds).describe()}",
                    fix=RETRY_LONGER,
                ) from exc
            if done.returncode == 0:
                return "cli --platform" if extra else "cli"
            # An engine older than API 1.48 refuses --platform; its store holds one platform anyway.
            if not extra or ("platform" not in done.stderr.lower() and "version" not in done.stderr.lower()):
                archive.unlink(missing_ok=True)
                last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode
                raise ImageError(f"`docker save` failed: {last}", fix="run `gitops-lab images pull` first")
    from docker.errors import APIError, ImageNotFound

    client = client or docker_client()
    try:
        with archive.open("wb") as fh:
            # The SDK saves one image per call; several go through the API's names list.
            stream = (
                client.api.get_image(refs[0])
                if len(refs) == 1
                else client.api._stream_raw_result(
                    client.api._get(client.api._url("/images/get"), params={"names": refs}, stream=True),
                    chunk_size=2 * 1024 * 1024,
                    decode=False,
                )
            )
            for chunk in stream:
                fh.write(chunk)
    except (APIError, ImageNotFound) as exc:
        archive.unlink(missing_ok=True)
        raise ImageError(
            f"cannot save {', '.join(refs)}: {getattr(exc, 'explanation', None) or exc}",
            fix="run `gitops-lab images pull` first",
        ) from exc
    return "sdk"


def _cli_save_supports_platform(docker_cli: str) -> bool:
    done = subprocess.run([docker_cli, "save", "--help"], capture_output=True, text=True, timeout=30)
    return "--platform" in done.stdout


def load_images(
    images: Iterable[LabImage], cluster, reporter: Reporter, workdir: Path, client=None, platform: str | None = None
) -> list[str]:
    """Save the loadable images into one archive and load it into the kind cluster's node(s)."""
    wanted = [i.ref for i in images if i.load]
    if not wanted:
        return []
    client = client or docker_client()
    held = cluster.images_in_nodes()

    def in_node(ref: str) -> bool:
        """The node holds this very image (same ID) under every name a Pod may use."""
        from docker.errors import ImageNotFound

        try:
            image_id = client.images.get(_saveable_refs([ref])[0]).id
        except ImageNotFound:
            return False  # saving it below says what to do
        return all(held.get(qualified_image(name)) == image_id for name in _node_names(ref))

    refs = [r for r in wanted if not in_node(r)]
    if not refs:
        reporter.info(f"all {len(wanted)} images are in the node already")
        return []
    platform = platform or node_platform(client)
    archive = workdir / "lab-images.tar"
    with reporter.step(f"Saving {len(refs)} images ({platform})") as step:
        how = save_images(_saveable_refs(refs), archive, platform, client)
        step.done(f"{archive} ({archive.stat().st_size // (1024 * 1024)} MiB, {how})")
    try:
        with reporter.step(f"Loading the images into kind cluster {cluster.settings.name}"):
            cluster.load_image_archive(archive)
    finally:
        archive.unlink(missing_ok=True)
    pinned_refs = [(f"{n}:{t}", f"{n}@{d}") for n, t, d in map(_split_ref, refs) if d and t]
    if pinned_refs:
        with reporter.step(f"Naming {len(pinned_refs)} images by their pinned digests in the node") as step:
            cluster.alias_images(pinned_refs)
            step.done("the kubelet finds them without a registry")
    return refs


def _node_names(ref: str) -> list[str]:
    """The names a node must hold an image under: name:tag, and name@digest where pinned."""
    name, tag, digest = _split_ref(ref)
    return [n for n in (f"{name}:{tag}" if tag else None, f"{name}@{digest}" if digest else None) if n]


def _saveable_refs(refs: list[str]) -> list[str]:
    """name:tag where the image has a tag (what the node is asked for), else the digest reference."""
    out = []
    for ref in refs:
        name, tag, digest = _split_ref(ref)
        out.append(f"{name}:{tag}" if tag else ref)
    return out

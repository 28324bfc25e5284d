"""Images inside the cluster's nodes: the names containerd gives them, what every node holds, digest aliases."""

from __future__ import annotations

import json
import subprocess

from gitops_lab.errors import ClusterError


def qualified_image(ref: str) -> str:
    """The fully qualified reference containerd stores: docker.io/library/python:3.12 for python:3.12."""
    name = ref.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return ref
    return ("docker.io/library/" if "/" not in name else "docker.io/") + ref


def images_held(nodes: list[str]) -> dict[str, str]:
    """Image name (fully qualified tag or digest reference) -> image ID, as every node's CRI holds it."""
    held: dict[str, str] | None = None
    for node in nodes:
        done = subprocess.run(
            ["docker", "exec", node, "crictl", "images", "-o", "json"], capture_output=True, text=True, timeout=120
        )
        names: dict[str, str] = {}
        if done.returncode == 0:
            for image in json.loads(done.stdout or "{}").get("images") or []:
                for name in (image.get("repoTags") or []) + (image.get("repoDigests") or []):
                    names[name] = image.get("id", "")
        held = names if held is None else {k: v for k, v in held.items() if names.get(k) == v}
    return held or {}


def alias_images(nodes: list[str], pairs: list[tuple[str, str]]) -> None:
    """Give each loaded image (tag, pinned ``name@sha256:`` reference) its digest name in every node's containerd.

    `docker save` writes tags only, so after a load a Pod that names the image
    by digest would make the kubelet pull it again; with the alias it finds it.
    """
    for tagged, by_digest in pairs:
        source, target = qualified_image(tagged), qualified_image(by_digest)
        for node in nodes:
            done = subprocess.run(
                [
                    "docker",
                    "exec",
                    node,
                    "ctr",
                    "--namespace",
                    "k8s.io",
                    "images",
                    "tag",
                    "--force",
                    source,
                    target,
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode != 0:
                raise ClusterError(
                    f"failed to name {source} as {target} in node {node}: {done.stderr.strip() or done.returncode}",
                    fix=f"run `gitops-lab images load` again; check `docker exec {node} crictl images`",
                )

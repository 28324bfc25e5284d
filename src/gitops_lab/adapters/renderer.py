"""The renderer: builds a kustomization as the engines would, with kustomize or kubectl.

The policy gate renders overlays with it; doctor and `up`'s preflight say
which one it found (or that none is installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gitops_lab.errors import PreflightError, WaitTimeout
from gitops_lab.deadline import current_deadline
from gitops_lab.processes import run_bounded

KUSTOMIZE_VAR = "GITOPS_LAB_KUSTOMIZE"
RENDER_TIMEOUT = 120


class RenderError(Exception):
    """The kustomization does not build; carries the renderer's own message."""


def kustomize_command() -> list[str]:
    """The command that renders a kustomization: $GITOPS_LAB_KUSTOMIZE, kustomize, or kubectl."""
    explicit = os.environ.get(KUSTOMIZE_VAR)
    if explicit:
        found = shutil.which(explicit)
        if not found:
            raise PreflightError(
                f"${KUSTOMIZE_VAR} names {explicit!r}, which is not an executable",
                fix=f"point ${KUSTOMIZE_VAR} at a kustomize binary, or unset it",
            )
        return [found, "kustomize"] if Path(found).name.startswith("kubectl") else [found, "build"]
    for name, verb in (("kustomize", "build"), ("kubectl", "kustomize")):
        found = shutil.which(name)
        if found:
            return [found, verb]
    raise PreflightError(
        "the policy gate renders overlays with kustomize, but neither `kustomize` nor `kubectl` is installed",
        fix="install kubectl (https://kubernetes.io/docs/tasks/tools/) or kustomize "
        "(https://kubectl.docs.kubernetes.io/installation/kustomize/), or set $GITOPS_LAB_KUSTOMIZE",
    )


def found_renderer() -> str | None:
    """The renderer's command line, or None when there is none (for doctor)."""
    try:
        return " ".join(kustomize_command())
    except PreflightError:
        return None


def build(folder: Path, hide: Path | None = None) -> list[dict[str, Any]]:
    """The objects the kustomization in ``folder`` renders to.

    Raises RenderError with the renderer's message (paths under ``hide`` shown
    relative to it), PreflightError when no renderer is installed.
    """
    import yaml

    command = kustomize_command()
    # A kustomization may fetch remote resources: the render takes what is left of the command's deadline.
    deadline = current_deadline()
    timeout = min(RENDER_TIMEOUT, deadline.remaining()) if deadline else RENDER_TIMEOUT
    within = f"the command's {deadline.describe()} deadline" if deadline else f"{RENDER_TIMEOUT}s"
    if timeout <= 0:
        raise _render_timeout(command, folder, hide, f"had no time left within {within}")
    try:
        proc = run_bounded([*command, str(folder)], timeout=timeout)
    except subprocess.TimeoutExpired:
        raise _render_timeout(command, folder, hide, f"did not finish within {within}") from None
    if proc.returncode != 0:
        text = proc.stderr or proc.stdout
        if hide is not None:
            text = text.replace(str(hide) + "/", "")
        raise RenderError(" ".join(text.split()) or f"exit code {proc.returncode}")
    try:
        # libyaml's safe loader when PyYAML has it: the same objects, parsed about ten times faster
        # (kustomize's output is the policy gate's biggest cost after kustomize itself).
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return [doc for doc in yaml.load_all(proc.stdout, Loader=loader) if isinstance(doc, dict)]
    except yaml.YAMLError as error:
        raise RenderError(f"kustomize printed invalid YAML: {error}") from None


def _render_timeout(command: list[str], folder: Path, hide: Path | None, what: str) -> WaitTimeout:
    """A render cut off by the deadline: a timeout (exit 3), not a verdict on the manifests."""
    shown = folder.relative_to(hide) if hide is not None and folder.is_relative_to(hide) else folder
    return WaitTimeout(
        f"rendering {shown} (`{Path(command[0]).name} {command[1]}`) {what}",
        fix="a kustomization that fetches remote resources (a URL under `resources:`) waits on that server: "
        "check that it answers, or give the command a longer --timeout",
    )

"""The policy gate: render the destination with the candidate, check every object.

The destination overlay is rendered exactly as the engine would render it, with
kustomize (``kustomize build``, else ``kubectl kustomize``), in a temporary copy
of the working copy in which the candidate version is already set. The working
copy itself is never touched.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from gitops_lab.adapters.renderer import RenderError, build
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.gates.result import GateContext, GateResult

NAME = "policy"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController")


def render(root: Path, env: str, version: str) -> list[dict[str, Any]]:
    """The objects ``env`` would deploy with ``version``, rendered in a temporary copy.

    Raises RenderError with kustomize's own message when the overlay does not build.
    """
    with tempfile.TemporaryDirectory(prefix="gitops-lab-policy-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".git"), symlinks=True)
        RepoLayout(copy).set_model_version(env, version)
        return build(copy / "overlays" / env, hide=copy)


def check(ctx: GateContext) -> GateResult:
    try:
        objects = render(ctx.root, ctx.dst, ctx.version)
    except RenderError as error:
        message = f"overlays/{ctx.dst} does not render with {ctx.version}: {error}"
        return GateResult(NAME, False, message, [f"fail: {message}"])
    violations = list(check_objects(objects, ctx.settings))
    if violations:
        shown = "; ".join(violations[:3]) + (f" and {len(violations) - 3} more" if len(violations) > 3 else "")
        return GateResult(
            NAME,
            False,
            f"{len(violations)} violation{'s' if len(violations) != 1 else ''}: {shown}",
            [f"fail: {v}" for v in violations],
        )
    checks = ", ".join(ctx.settings.get("checks") or []) or "none"
    return GateResult(
        NAME,
        True,
        f"{len(objects)} objects, no violations",
        [f"pass: {len(objects)} rendered objects of overlays/{ctx.dst} checked ({checks})"],
    )


def check_objects(objects: list[dict[str, Any]], settings: dict[str, Any]) -> Iterator[str]:
    """Every violation of the enabled checks, as ``Kind/name [container c]: problem``."""
    enabled = set(settings.get("checks") or [])
    secret_words = [w.upper() for w in settings.get("secret_env_names") or []]
    required = list(settings.get("required_resources") or [])
    for obj in objects:
        kind = obj.get("kind", "?")
        where = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
        if kind == "Secret" and "plaintext-secrets" in enabled:
            keys = sorted({*(obj.get("data") or {}), *(obj.get("stringData") or {})})
            if keys:
                yield f"{where}: Secret with data in Git ({', '.join(keys)}); use a sealed or external secret"
        pod = pod_spec(obj)
        if pod is None:
            continue
        if "host-access" in enabled:
            for field in ("hostNetwork", "hostPID", "hostIPC"):
                if pod.get(field) is True:
                    yield f"{where}: {field}: true"
            for volume in pod.get("volumes") or []:
                if "hostPath" in volume:
                    yield f"{where}: volume {volume.get('name', '?')} is a hostPath ({volume['hostPath'].get('path', '?')})"
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for container in pod.get(group) or []:
                yield from _check_container(
                    f"{where} container {container.get('name', '?')}", container, enabled, required, secret_words
                )


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        return spec
    if kind in _POD_TEMPLATE_KINDS:
        return ((spec.get("template") or {}).get("spec")) or {}
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    return None


def _check_container(
    where: str, container: dict[str, Any], enabled: set[str], required: list[str], secret_words: list[str]
) -> Iterator[str]:
    security = container.get("securityContext") or {}
    if "privileged" in enabled:
        if security.get("privileged") is True:
            yield f"{where}: privileged: true"
        if security.get("allowPrivilegeEscalation") is True:
            yield f"{where}: allowPrivilegeEscalation: true"
    if "image-digest" in enabled:
        image = str(container.get("image") or "")
        if not _DIGEST.search(image):
            yield f"{where}: image {image or '(none)'} is not pinned by @sha256 digest"
    if "resources" in enabled:
        resources = container.get("resources") or {}
        missing = [
            item
            for item in required
            if (resources.get(item.split(".", 1)[0]) or {}).get(item.split(".", 1)[1]) in (None, "")
        ]
        if missing:
            yield f"{where}: resources not set: {', '.join(missing)}"
    if "plaintext-secrets" in enabled:
        for env in container.get("env") or []:
            name = str(env.get("name", ""))
            if env.get("value") not in (None, "") and any(_names_secret(name, word) for word in secret_words):
                yield f"{where}: env {name} has a literal value; use valueFrom.secretKeyRef"


def _names_secret(name: str, word: str) -> bool:
    """DB_PASSWORD and OPENAI_API_KEY look like secrets; TOKENIZER_PATH does not."""
    return re.search(rf"(^|[_.-]){re.escape(word)}($|[_.-])", name.upper()) is not None

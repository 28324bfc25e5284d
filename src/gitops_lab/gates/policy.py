"""The policy gate: render the destination with the candidate, check every object.

The destination overlay is rendered exactly as the engine would render it, with
kustomize (``kustomize build``, else ``kubectl kustomize``), in a temporary copy
of the working copy in which the candidate version is already set. The working
copy itself is never touched.
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from gitops_lab.adapters.renderer import RenderError, build, kustomize_command
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.gates.result import GateContext, GateResult
from gitops_lab.gates.sops_secrets import lab_recipients, secret_problems
from gitops_lab.model.signing import SignatureError, load_trusted_keys, verify_artifact

NAME = "policy"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController")


def render(root: Path, env: str, version: str) -> list[dict[str, Any]]:
    """The objects ``env`` would deploy with ``version``, rendered in a temporary copy.

    Raises RenderError with kustomize's own message when the overlay does not build.
    """
    kustomize_command()  # no renderer installed: say so before copying anything
    with tempfile.TemporaryDirectory(prefix="gitops-lab-policy-") as tmp:
        copy = Path(tmp) / "repo"
        _copy_what_git_would_take(root, copy)
        RepoLayout(copy).set_model_version(env, version)
        return build(copy / "overlays" / env, hide=copy)


def _copy_what_git_would_take(root: Path, copy: Path) -> None:
    """Copy the files Git tracks or would add (ignored ones left out), as they are in the working copy.

    Only regular files and symlinks: a named pipe would block the copy for ever,
    a socket cannot be copied, and an ignored .venv or node_modules is neither
    rendered nor worth copying.
    """
    git = Git(root)
    if git.is_repo():
        listed = git.out("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    else:  # a plain folder (a copy, a test tree): everything in it but .git
        listed = [str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.relative_to(root).parts]
    for rel in dict.fromkeys(name for name in listed if name):
        source, target = root / rel, copy / rel
        if source.is_symlink() or (source.exists() and stat.S_ISREG(source.lstat().st_mode)):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)


def check(ctx: GateContext) -> GateResult:
    try:
        objects = render(ctx.root, ctx.dst, ctx.version)
    except RenderError as error:
        message = f"overlays/{ctx.dst} does not render with {ctx.version}: {error}"
        return GateResult(NAME, False, message, [f"fail: {message}"])
    violations = list(check_objects(objects, ctx.settings, lab_recipients(ctx.root)))
    evidence = []
    if "model-signature" in (ctx.settings.get("checks") or []):
        problem, signed = check_signature(ctx.root, ctx.version, ctx.settings.get("trusted_keys") or [])
        violations += problem
        evidence += signed
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
        [f"pass: {len(objects)} rendered objects of overlays/{ctx.dst} checked ({checks})", *evidence],
    )


def check_objects(
    objects: list[dict[str, Any]],
    settings: dict[str, Any],
    recipients: tuple[list[str], str | None] = ([], None),
) -> Iterator[str]:
    """Every violation of the enabled checks, as ``Kind/name [container c]: problem``.

    ``recipients`` are the lab's age recipients (from .sops.yaml, see sops_secrets.lab_recipients):
    a Secret passes plaintext-secrets only when SOPS encrypted it for one of them.
    """
    enabled = set(settings.get("checks") or [])
    secret_words = [w.upper() for w in settings.get("secret_env_names") or []]
    required = list(settings.get("required_resources") or [])
    for obj in objects:
        kind = obj.get("kind", "?")
        where = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
        if kind == "Secret" and "plaintext-secrets" in enabled:
            yield from secret_problems(obj, *recipients)
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


def check_signature(root: Path, version: str, trusted_keys: list[str]) -> tuple[list[str], list[str]]:
    """The model-signature check: (the violation, or the pass line) for ``version``'s artifact and the trusted keys.

    The violation is one line naming the artifact, what is wrong and the fix.
    """
    shown = f"base/models/{version}.json"
    try:
        key = verify_artifact(root / shown, load_trusted_keys(root, trusted_keys), shown)
    except SignatureError as error:
        return [error.one_line()], []
    return [], [f"pass: {shown} signed by {key.path} (key {key.key_id[:16]})"]


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

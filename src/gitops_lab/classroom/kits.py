"""The learner kit (a kubeconfig for their namespaces, their Git credentials), and `class join`:
the learner's side, which makes a lab environment of one's own out of a kit."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops_lab.adapters.engines.tenancy import LEARNER_ACCOUNT, tenant_namespaces
from gitops_lab.adapters.gitserver.base import GitServer
from gitops_lab.adapters.gitserver.credentials import CREDENTIALS_FILE, Credentials, GitServerCredentials
from gitops_lab.adapters.repo.platform import platform_repository
from gitops_lab.adapters.repo.seed import init_working_copy
from gitops_lab.classroom.record import ClassRecord, kit_dir, pushing_as
from gitops_lab.errors import UsageError
from gitops_lab.kube.client import Kube
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState, environment_dir, write_private_json, write_private_text
from gitops_lab.textfiles import load_json_object, read_text

KIT_FILE = "kit.json"
DEFAULT_KIT_DAYS = 30


def write_kit(record: ClassRecord, learner: str, kube: Kube, server: GitServer, creds: Credentials, days: int) -> Path:
    """kubeconfig (a ServiceAccount token good for ``days``) and kit.json, both 0600."""
    namespaces = tenant_namespaces(learner)
    token = kube.core().create_namespaced_service_account_token(
        LEARNER_ACCOUNT, namespaces["dev"], {"spec": {"expirationSeconds": days * 86400}}
    )
    folder = kit_dir(record.name, learner)
    cluster: dict[str, Any] = {"server": kube.host}
    ca = kube.api.configuration.ssl_ca_cert
    if ca:
        cluster["certificate-authority-data"] = base64.b64encode(Path(ca).read_bytes()).decode()
    elif not kube.api.configuration.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    context = f"{record.name}-{learner}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": record.name, "cluster": cluster}],
        "users": [{"name": learner, "user": {"token": token.status.token}}],
        "contexts": [
            {"name": context, "context": {"cluster": record.name, "user": learner, "namespace": namespaces["dev"]}}
        ],
    }
    write_private_text(folder / "kubeconfig", yaml.safe_dump(kubeconfig, sort_keys=False), mode=0o600)
    urls = server.endpoints(learner)
    platform = server.endpoints(platform_repository(learner))
    write_private_json(
        folder / KIT_FILE,
        {
            "class": record.name,
            "learner": learner,
            "engine": record.engine,
            "namespaces": namespaces,
            "git_url": urls.host_url,
            "engine_git_url": urls.cluster_url,
            # The learner's own platform repository (the ci-templates lab), beside their lab repository.
            "platform_git_url": platform.host_url,
            "git_username": creds.username,
            "git_password": creds.password,
            "kubeconfig": "kubeconfig",
            "expires": token.status.expiration_timestamp.isoformat(),
        },
        mode=0o600,
    )
    return folder


@dataclass
class JoinResult:
    name: str
    learner: str
    repo_path: str
    clone_url: str
    namespaces: dict[str, str]
    # Their platform repository, beside the lab repository (None: a kit from before classes had one).
    platform_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_KIT_TEXT_FIELDS = ("git_url", "git_username", "git_password")


def read_kit(kit: Path) -> tuple[dict[str, Any], str]:
    """A learner kit's kit.json and its kubeconfig's text; UsageError naming what is missing or damaged."""
    fix = "ask your instructor for the kit again (the folder with kit.json and kubeconfig)"
    if not kit.is_dir():
        raise UsageError(f"{kit} is not a learner kit (not a folder)", fix=fix)
    try:
        data = load_json_object(kit / KIT_FILE, "learner kit file", fix)
    except FileNotFoundError:
        raise UsageError(f"{kit} is not a learner kit (no readable {KIT_FILE})", fix=fix) from None
    missing = [f for f in _KIT_TEXT_FIELDS if not isinstance(data.get(f), str) or not data[f]]
    kubeconfig_name = data.get("kubeconfig", "kubeconfig")
    if not isinstance(kubeconfig_name, str) or Path(kubeconfig_name).name != kubeconfig_name:
        missing.append("kubeconfig (a file name in the kit)")
    if missing:
        raise UsageError(f"the learner kit file {kit / KIT_FILE} lacks {', '.join(missing)}", fix=fix)
    try:
        kubeconfig = read_text(kit / kubeconfig_name, "kit's kubeconfig", fix)
    except FileNotFoundError:
        raise UsageError(f"the learner kit {kit} has no {kubeconfig_name}", fix=fix) from None
    return data, kubeconfig


def join(kit: Path, name: str, repo_path: str | None, reporter: Reporter) -> JoinResult:
    """The learner's side: make a lab environment of one's own out of a kit."""
    data, kubeconfig_text = read_kit(kit)
    home = environment_dir(name)
    kubeconfig = home / "kubeconfig"
    write_private_text(kubeconfig, kubeconfig_text)
    creds = Credentials(data["git_username"], data["git_password"])
    # Later commands push with these, as after `up` on kind (cli/app.py: Application.git_auth).
    write_private_json(home / CREDENTIALS_FILE, GitServerCredentials(creds, creds).to_dict())
    path = Path(repo_path) if repo_path else home / "repo"
    with reporter.step(f"Cloning {data['git_url']}") as step, pushing_as(creds):
        seeded = init_working_copy(path, data["git_url"])
        step.done(seeded.action)
    EnvironmentState(
        name=name,
        repo_path=str(seeded.path),
        remote_url=data["git_url"],
        provider="existing",
        engine=data["engine"],
        engine_install="external",
        kubeconfig=str(kubeconfig),
        engine_repo_url=data.get("engine_git_url"),
        tenant=data["learner"],
    ).save()
    platform = data.get("platform_git_url")
    return JoinResult(
        name,
        data["learner"],
        str(seeded.path),
        data["git_url"],
        data["namespaces"],
        platform if isinstance(platform, str) else None,
    )

"""The interface every engine adapter implements, and the records it returns."""

from __future__ import annotations

import abc
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from gitops_lab.adapters.engines import install as installer
from gitops_lab.adapters.engines.install import crd_verdict, start_from_local_images
from gitops_lab.adapters.engines.release import fetch_release, is_local_source
from gitops_lab.deadline import Deadline
from gitops_lab.errors import ClusterError, EngineError
from gitops_lab.kube.apply import Applier
from gitops_lab.kube.client import Kube
from gitops_lab.kube.wait import AskAgain
from gitops_lab.reporter import Reporter
from gitops_lab.resources import manifests_dir
from gitops_lab.versions import engine_install_url, install_pins, pinned

Progress = Callable[[str], None]
#: The Secret (in the engine's namespace) holding the lab's age key (`gitops-lab secrets init`), and its entry:
#: kustomize-controller imports every entry whose name ends in .agekey; Argo CD's plugin reads this one file.
SOPS_KEY_SECRET = "sops-age"
SOPS_KEY_DATA = "age.agekey"


def registered_name(env: str, tenant: str | None = None) -> str:
    """The name of what `register` creates for ``env`` (Application, GitRepository, Kustomization).

    A classroom tenant (one learner on a shared cluster) gets its own names.
    """
    return f"gitops-lab-{tenant}-{env}" if tenant else f"gitops-lab-{env}"


def project_name(tenant: str | None = None) -> str:
    """The Argo CD AppProject (and prefix of other per-environment-set objects) of a tenant."""
    return f"gitops-lab-{tenant}" if tenant else "gitops-lab"


@dataclass(frozen=True)
class EnvironmentTarget:
    """One environment as the engine sees it: where to read, where to apply."""

    name: str
    namespace: str
    path: str
    self_heal: bool = True
    prune: bool = True


@dataclass(frozen=True)
class RepoAccess:
    """The Git URL as the engine reaches it, and optional basic-auth credentials."""

    url: str
    branch: str = "main"
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass
class EngineStatus:
    environment: str
    engine: str
    revision: str | None
    synced: bool
    healthy: bool
    sync_state: str
    health_state: str
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InstallReport:
    engine: str
    mode: str
    version: str | None
    changed: bool
    details: list[str] = field(default_factory=list)


class Engine(abc.ABC):
    name: str
    display_name: str
    namespace: str
    # CRDs that must be Established for the engine to work.
    crds: tuple[str, ...] = ()
    # How to install it by hand, for the error when external mode finds nothing.
    install_hint: str = ""
    # Whether the engine has a web UI that a managed install can serve on a NodePort.
    has_ui: bool = False
    # Set by serve_ui: the NodePort a managed install exposes the UI on.
    ui_node_port: int | None = None
    # Where the engine's API takes a forge's push webhooks (see accept_push_webhooks); None: it polls.
    push_webhook_path: str | None = None

    def __init__(self, kube: Kube | None = None, tenant: str | None = None):
        self.kube = kube
        self._applier = Applier(kube) if kube is not None else None
        # A classroom learner: their objects are named after them (see registered_name).
        self.tenant = tenant

    @property
    def applier(self) -> Applier:
        """The cluster's objects; an engine made without ``kube`` only prepares manifests."""
        if self._applier is None:
            raise ClusterError(
                f"{self.display_name} was made without a cluster, so it cannot reach one",
                fix="connect to the cluster first (`gitops-lab up`, or --kubeconfig/--context)",
            )
        return self._applier

    def attach(self, kube: Kube) -> None:
        """Work on the cluster ``kube`` (`up` makes the adapter before the cluster exists)."""
        self.kube = kube
        self._applier = Applier(kube)

    def serve_ui(self, node_port: int) -> None:
        """Have a managed install expose the engine's UI, if it has one, on ``node_port``."""
        if self.has_ui:
            self.ui_node_port = node_port

    def ui_url(self, host_port: int) -> str | None:
        """Where the UI answers on this machine when ``host_port`` maps its NodePort; None without a UI."""
        return f"http://localhost:{host_port}" if self.ui_node_port else None

    def object_name(self, env: str) -> str:
        return registered_name(env, self.tenant)

    # -- install ---------------------------------------------------------------
    def release(self, reporter: Reporter, source_url: str | None = None):
        """The pinned release manifest, downloaded once and cached (see release.py)."""
        spec = pinned()[self.name]
        source = source_url or engine_install_url(self.name)
        # The pin applies to every source: a mirror or a local copy must be the pinned release.
        pins = install_pins(self.name, is_local_source(source))
        with reporter.step(f"Fetching {self.display_name} {spec['version']} release manifests") as step:
            cached = fetch_release(self.name, spec["version"], source, pins)
            trust = "" if pins else " (not pinned in versions.yaml: trusted on first use)"
            step.done(f"{cached.source}, sha256 {cached.sha256[:12]}{trust}")
        return cached

    def install(
        self, mode: str, reporter: Reporter, deadline: Deadline, source_url: str | None = None
    ) -> InstallReport:
        """managed: apply the pinned release plus the lab's patches; external: check it runs."""
        if mode == "external":
            return self.check_external(reporter)
        cached = self.release(reporter, source_url)
        objects = self.lab_manifests(cached.path.read_text(encoding="utf-8"))
        changed = installer.apply_in_order(self.applier, objects, reporter, deadline)
        controllers = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"]
        installer.wait_deployments_available(self.applier, self.namespace, controllers, reporter, deadline)
        self.wait_installed(objects, reporter, deadline)
        return InstallReport(
            self.name,
            "managed",
            pinned()[self.name]["version"],
            bool(changed),
            [f"{len(objects)} objects applied, {len(changed)} changed", f"controllers: {', '.join(controllers)}"],
        )

    def lab_manifests(self, text: str) -> list[dict[str, Any]]:
        """What a managed install applies: the trimmed, patched release, starting from local images."""
        return start_from_local_images(self.prepare_manifests(text))

    @abc.abstractmethod
    def prepare_manifests(self, text: str) -> list[dict[str, Any]]:
        """The upstream release's objects as the lab installs them."""

    def wait_installed(self, objects: list[dict[str, Any]], reporter: Reporter, deadline: Deadline) -> None:
        """Extra waits after the controllers' Deployments are Available; none unless an engine needs them."""
        return None

    def check_external(self, reporter: Reporter) -> InstallReport:
        """External mode: the CRDs are Established and the namespace exists; say what runs."""
        with reporter.step(f"Checking the {self.display_name} that is already installed") as step:
            details = []
            for crd in self.crds:
                ok, seen = crd_verdict(self.applier.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd))
                if not ok:
                    raise EngineError(
                        f"{self.display_name} is not installed: CRD {crd} {seen}",
                        fix=f"{self.install_hint}, or use --engine-install managed",
                    )
                details.append(f"CRD {crd} Established")
            if self.applier.get("v1", "Namespace", self.namespace) is None:
                raise EngineError(
                    f"{self.display_name}'s namespace {self.namespace!r} does not exist",
                    fix=f"{self.install_hint}, or use --engine-install managed",
                )
            deployments = self.applier.kube.apps().list_namespaced_deployment(self.namespace).items
            images = sorted({c.image for d in deployments for c in d.spec.template.spec.containers})
            details.append(
                f"{len(deployments)} Deployments in {self.namespace}"
                + (f" ({', '.join(images)})" if images else " (controllers run outside the cluster)")
            )
            step.done("; ".join(details))
        return InstallReport(self.name, "external", None, False, details)

    # -- environments ------------------------------------------------------------

    @abc.abstractmethod
    def register(self, targets: list[EnvironmentTarget], repo: RepoAccess) -> list[str]:
        """Create or update what makes the engine sync each environment. Returns what changed."""

    @abc.abstractmethod
    def request_reconcile(self, env: str, commit: str | None = None) -> None:
        """Ask the engine to look at Git now rather than at its next poll (``commit``: the one awaited)."""

    @abc.abstractmethod
    def status(self, env: str) -> EngineStatus:
        """What the engine reports for ``env`` right now."""

    @abc.abstractmethod
    def wait_applied(
        self, env: str, commit: str | None, deadline: Deadline, on_progress: Progress | None = None
    ) -> EngineStatus:
        """Wait until ``env`` has applied ``commit`` (any, if None) and is healthy."""

    #: The Service in ``namespace`` that serves ``push_webhook_path`` on port 80, for a forge in the cluster.
    push_webhook_service: str | None = None

    def push_webhook(self, secret: str) -> tuple[str | None, list[str]]:
        """Have the engine take a forge's push webhooks signed with ``secret`` (``accept_push_webhooks``):
        where a forge in the same cluster sends them (None: the engine takes none), and what changed."""
        if not self.push_webhook_service:
            return None, []
        changed = self.accept_push_webhooks(secret)
        path = self.webhook_path(secret)
        return f"http://{self.push_webhook_service}.{self.namespace}.svc.cluster.local{path}", changed

    def webhook_path(self, secret: str) -> str:
        """The path on ``push_webhook_service`` that takes pushes signed with ``secret``."""
        return self.push_webhook_path or "/"

    def accept_push_webhooks(self, secret: str) -> list[str]:
        """Have the engine accept a forge's push webhooks signed with ``secret``; what changed.

        An engine without an endpoint for them (``push_webhook_service`` None) changes nothing and
        returns []: it finds a push at its next poll, or at once when the CLI requests a reconcile
        (docs/forge.md).
        """
        return []

    #: How the engine decrypts SOPS-encrypted manifests in the cluster; "" when it cannot (docs/secrets.md).
    decryption = ""

    def enable_decryption(self, envs: list[str], key_secret: str) -> list[str]:
        """Let ``envs`` decrypt SOPS files with the age key in Secret ``key_secret`` (in self.namespace).

        Returns what changed. An engine that cannot decrypt in the cluster changes nothing and returns [].
        """
        return []

    def has_sops_key(self) -> bool:
        """Whether `secrets init` put the lab's age key in the engine's namespace, so `register` decrypts.

        Only then: an engine told to decrypt with a missing key fails every apply. Never for a class's
        tenants yet (one key there would decrypt every learner's files), nor for an engine made without
        a cluster (it only prepares manifests, which name no key it cannot see).
        """
        return (
            not self.tenant
            and self._applier is not None
            and self._applier.get("v1", "Secret", SOPS_KEY_SECRET, self.namespace) is not None
        )

    # -- shared helpers ---------------------------------------------------------
    def ask_again(
        self, env: str, commit: str | None, revision_of: Callable[[dict[str, Any]], str | None]
    ) -> AskAgain | None:
        """For wait_applied: while ``env`` reports another revision than ``commit``, request a reconcile
        again on a bounded backoff (one request can be handled before the commit is visible)."""
        if not commit:
            return None
        return AskAgain(
            lambda obj: obj is not None and revision_of(obj) != commit, lambda: self.request_reconcile(env, commit)
        )

    def render(self, template: str, **values: str) -> list[dict[str, Any]]:
        """Render manifests/<engine>/<template> with ${name} placeholders."""
        text = (manifests_dir(self.name) / template).read_text(encoding="utf-8")
        rendered = string.Template(text).substitute(values)
        return [doc for doc in yaml.safe_load_all(rendered) if doc]

    def apply_changed(self, objects: list[dict[str, Any]]) -> list[str]:
        """Apply objects; return "Kind/name" of those whose stored spec changed."""
        return self.applier.apply_changed(objects)

"""What every lab action is given and returns: the LabContext (the working copy, the cluster opened
lazily, the step's marks), a CheckResult, ActionFailed, and the few readings doers and checks share.

Git is read as pushed (``origin/main`` after a fetch): what the engine sees is
what counts, so a commit the learner forgot to push does not pass a check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.history import log_entries
from gitops_lab.adapters.repo.layout import DEPLOYMENT, ENVIRONMENTS, RepoLayout, previous_environment
from gitops_lab.adapters.repo.publish import remote_branch
from gitops_lab.adapters.repo.pushed import follow_pushed
from gitops_lab.adapters.repo.snapshot import RepoSnapshot
from gitops_lab.deadline import Deadline, current_deadline
from gitops_lab.errors import GitOpsLabError, UsageError
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState
from gitops_lab.workflows.converge import converge
from gitops_lab.workflows.environment import open_environment
from gitops_lab.workflows.pull_request import LabForge, lab_forge

LAB_TRAILER = "Lab"
RESET_ACTION = "lab-reset"


def start_tag(lab_id: str) -> str:
    return f"gitops-lab/lab/{lab_id}/start"


@dataclass
class CheckResult:
    passed: bool
    message: str
    hint: str = ""
    action: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ActionFailed(GitOpsLabError):
    """A setup, solve or reset action could not do its job."""


class Lab(Protocol):
    """What an action reads of its lab (a loaded ``labs.loader.Lab``): this module sits below the loader,
    which reads the registry that names the functions here."""

    id: str
    folder: Path


@dataclass
class LabContext:
    """Everything an action needs: the working copy, the cluster (opened lazily), progress marks."""

    lab: Lab
    repo: Path
    reporter: Reporter
    timeout: float
    state: EnvironmentState | None
    kubeconfig: str | None = None
    context: str | None = None
    marks: dict[str, Any] = field(default_factory=dict)
    #: The lab environment's name (its state folder), where observations are recorded.
    name: str | None = None
    _environment: Any = None
    _fetched: bool = False

    # -- cluster --------------------------------------------------------------
    @property
    def has_cluster(self) -> bool:
        return bool(self.state and self.state.engine)

    @property
    def engine_name(self) -> str | None:
        return self.state.engine if self.state else None

    def environment(self):
        """The LabEnvironment (engine, applier, namespaces); opened on first use."""
        if self._environment is None:
            if not self.has_cluster:
                raise UsageError(
                    f"lab {self.lab.id} needs a cluster with an engine, and none is set up",
                    fix="run `gitops-lab up` first",
                )
            self._environment = open_environment(self.state, self.kubeconfig, self.context, self.repo)
        return self._environment

    def deadline(self):
        """The command's deadline (lab start/check/solve/reset, and `class reset` over many learners: one for
        the whole command, so it ends by what the user gave), else --timeout afresh for this wait."""
        return current_deadline() or Deadline(self.timeout)

    # -- Git --------------------------------------------------------------------
    @property
    def git(self) -> Git:
        return Git(self.repo)

    @property
    def layout(self) -> RepoLayout:
        return RepoLayout(self.repo)

    def pushed(self, refresh: bool = False) -> str:
        """The ref of what was pushed (origin/main after one fetch), or HEAD without a remote.

        The first call (and each ``refresh``) also fast-forwards a clean working
        copy, so history() and file reads see pushes made elsewhere.
        """
        if refresh or not self._fetched:
            ref = follow_pushed(self.git)
            self._fetched = ref != "HEAD"
            return ref
        return remote_branch(self.git)

    def unpushed(self) -> list[str]:
        """``sha subject`` of each local commit the remote does not have, newest first."""
        ref = self.pushed()
        if ref == "HEAD":
            return []
        return self.git.out("log", "--format=%h %s", f"{ref}..HEAD").splitlines()

    def show(self, path: str, ref: str | None = None) -> str | None:
        return self.snapshot(ref).lenient_text(path)

    def snapshot(self, ref: str | None = None) -> RepoSnapshot:
        """What Git says at ``ref`` (default: what was pushed)."""
        return RepoSnapshot(self.git, ref or self.pushed())

    def since(self) -> str | None:
        """The lab's start point on the pushed branch: its newest reset commit, else its start tag."""
        git, ref = self.git, self.pushed()
        tag = git.run(
            "rev-parse", "--verify", "--quiet", f"refs/tags/{start_tag(self.lab.id)}^{{commit}}", check=False
        ).stdout.strip()
        for entry in log_entries(git, ref):
            if entry.sha == tag:
                return entry.sha
            if entry.trailer(t.ACTION) == RESET_ACTION and entry.trailer(LAB_TRAILER) == self.lab.id:
                return entry.sha
        return None

    def converge(self, envs: list[str], commit: str) -> None:
        """Ask the engine to reconcile ``envs``, then wait until each serves ``commit`` as Git says."""
        converge(self.environment(), envs, commit, self.deadline(), self.reporter)

    # -- forge ------------------------------------------------------------------
    def forge(self) -> LabForge | None:
        """The lab repository on its forge (Gitea: pull requests, reviews), or None when the lab has none."""
        return lab_forge(self.state, self.repo)

    def environment_to_wait_on(self):
        """The LabEnvironment a change waits on, or None without a cluster."""
        return self.environment() if self.has_cluster else None


# -- shared by doers and checks ---------------------------------------------------
def targets(env: str) -> list[str]:
    return list(ENVIRONMENTS) if env == "all" else [env]


def promotion_source(p: dict[str, Any]) -> str:
    return p.get("from") or previous_environment(p["to"]) or p["to"]


def live_deployment(ctx: LabContext, env: str) -> dict[str, Any] | None:
    lab = ctx.environment()
    return lab.engine.applier.get("apps/v1", "Deployment", DEPLOYMENT, lab.namespace(env))

"""The class record (class.json): engine, cluster, Git server and learners; the class's Git
users; where a class keeps things in the state folder."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.adapters.forge.classserver import ClusterGiteaClassGitServer
from gitops_lab.adapters.forge.seed import CREDENTIALS_FILE
from gitops_lab.adapters.gitserver.base import ClassCredentials, GitServer
from gitops_lab.adapters.gitserver.clusterclass import DEFAULT_NODE_PORT, ClusterClassGitServer
from gitops_lab.adapters.gitserver.folder import FolderGitServer
from gitops_lab.adapters.gitserver.credentials import Credentials, credentials_in, new_password
from gitops_lab.adapters.repo.git import authenticated
from gitops_lab.deadline import Deadline
from gitops_lab.errors import GitOpsLabError, NotFound, UsageError
from gitops_lab.kube.client import Kube, check_reachable, connect
from gitops_lab.reporter import Reporter
from gitops_lab.state import environment_dir, write_private_json
from gitops_lab.textfiles import load_json_object

CLASS_DIR = "class"


# -- where things are --------------------------------------------------------------
def class_dir(name: str) -> Path:
    return environment_dir(name) / CLASS_DIR


def learner_env_name(name: str, learner: str) -> str:
    """The environment name of the instructor's view of ``learner`` (a folder under the class)."""
    return f"{name}/{CLASS_DIR}/learners/{learner}"


def class_file(name: str) -> Path:
    """The class record (class.json); it exists while a class lives in the environment."""
    return class_dir(name) / "class.json"


def kit_dir(name: str, learner: str) -> Path:
    return class_dir(name) / "kits" / learner


# -- the class's Git server --------------------------------------------------------
@dataclass
class GitServerRecord:
    """The class's Git server: ``folder`` (a folder of bare repositories you serve),
    ``in-cluster`` (gitops-lab's server in the cluster, one per class) or ``gitea`` (Gitea in the cluster,
    one per class: a forge, with pull requests and reviews)."""

    kind: str = "folder"
    root: str = ""
    base_url: str = ""
    engine_base_url: str | None = None
    auth_file: str | None = None
    node_port: int | None = None
    # gitea: where the host reaches Gitea (base_url is the class's organisation in it), and the accounts file
    forge_url: str | None = None
    forge_credentials: str | None = None

    def server(self, class_name: str, kube: Kube | None = None, deadline: Deadline | None = None) -> GitServer:
        """The server; without ``kube`` only to check the options (an in-cluster one needs the cluster)."""
        if self.kind == "gitea":
            credentials = Path(self.forge_credentials or class_dir(class_name) / CREDENTIALS_FILE)
            return ClusterGiteaClassGitServer(
                class_name,
                credentials,
                self.forge_url or None,
                kube=kube,
                node_port=self.node_port or DEFAULT_NODE_PORT,
                deadline=deadline,
            )
        if self.kind == "in-cluster":
            return ClusterClassGitServer(
                class_name, kube, self.base_url or None, self.node_port or DEFAULT_NODE_PORT, deadline=deadline
            )
        return FolderGitServer(
            Path(self.root), self.base_url, self.engine_base_url, Path(self.auth_file) if self.auth_file else None
        )


def git_server_record(
    kind: str | None,
    root: str | None,
    base_url: str | None,
    engine_base_url: str | None,
    node_port: int | None,
    auth_file: str | None,
) -> GitServerRecord:
    """The Git server options of `class create`, checked: in-cluster unless a folder is named."""
    kind = kind or ("folder" if root else "in-cluster")
    if kind == "gitea":
        _refuse_own_server_flags(root, auth_file, engine_base_url, "gitea")
        return GitServerRecord("gitea", node_port=node_port, forge_url=base_url or None)
    if kind == "folder":
        missing = [flag for flag, value in (("--git-root", root), ("--git-base-url", base_url)) if not value]
        if missing:
            raise UsageError(
                f"a folder Git server needs {' and '.join(missing)}",
                fix="pass the folder your Git server serves and its URL, or leave out --git-server folder "
                "to run the server in the cluster",
            )
        if node_port:
            raise UsageError("--git-node-port is for the in-cluster Git server", fix="leave it out with --git-root")
        return GitServerRecord(
            "folder",
            str(Path(root or ".").expanduser().resolve()),
            base_url or "",
            engine_base_url,
            str(Path(auth_file).expanduser().resolve()) if auth_file else None,
        )
    _refuse_own_server_flags(root, auth_file, engine_base_url, "in-cluster")
    return GitServerRecord("in-cluster", base_url=base_url or "", node_port=node_port)


def _refuse_own_server_flags(root: str | None, auth_file: str | None, engine_base_url: str | None, kind: str) -> None:
    wrong = [
        flag
        for flag, value in (
            ("--git-root", root),
            ("--git-auth-file", auth_file),
            ("--git-engine-base-url", engine_base_url),
        )
        if value
    ]
    if wrong:
        what = "the in-cluster one" if kind == "in-cluster" else "the class's Gitea"
        raise UsageError(
            f"{', '.join(wrong)} name a Git server of your own, not {what}",
            fix="leave them out, or pass --git-server folder",
        )


# -- the class record ------------------------------------------------------------------
@dataclass
class ClassRecord:
    name: str
    engine: str
    kubeconfig: str | None
    context: str | None
    git: GitServerRecord
    learners: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return class_file(self.name)

    def save(self) -> None:
        write_private_json(self.path, asdict(self), mode=0o644)


def load_class(name: str) -> ClassRecord:
    path = class_file(name)
    fix = "restore it from your backup, or delete the class folder and run `gitops-lab class create` again"
    try:
        data = load_json_object(path, "class file", fix)
    except FileNotFoundError:
        raise NotFound(
            f"no class is set up under the environment name {name!r} (no {path})",
            fix="create one with `gitops-lab class create`",
        ) from None
    git = data.get("git") or {}
    fields: dict[str, Any] = {f: data.get(f) for f in ("name", "engine", "kubeconfig", "context", "learners")}
    problems = [f"{f} is not text" for f in ("name", "engine") if not isinstance(fields[f], str)]
    problems += [f"{f} is not text" for f in ("kubeconfig", "context") if not isinstance(fields[f], (str, type(None)))]
    learners = fields["learners"] if fields["learners"] is not None else []
    if not isinstance(learners, list) or not all(isinstance(n, str) for n in learners):
        problems.append("learners is not a list of names")
    if not isinstance(git, dict) or not set(git) <= set(GitServerRecord.__dataclass_fields__):
        problems.append("git is not a Git server record")
    if problems:
        raise UsageError(f"the class file {path} is damaged: {', '.join(problems)}", fix=fix)
    return ClassRecord(**{**fields, "learners": learners}, git=GitServerRecord(**git))


def load_class_or_none(name: str) -> ClassRecord | None:
    try:
        return load_class(name)
    except NotFound:
        return None


def refuse_while_class_exists(name: str) -> None:
    """`down` would take the learners' repositories (on the cluster) and their kits with it."""
    path = class_file(name)
    if path.exists():
        raise GitOpsLabError(
            f"a class lives in the environment {name!r} ({path}): deleting it would lose every learner's "
            "repository and kit",
            fix="run `gitops-lab class delete` first (it bundles every learner's repository), then this again",
        )


def connect_cluster(record: ClassRecord, reporter: Reporter) -> Kube:
    """The class's cluster, as the instructor (the record's kubeconfig and context), checked reachable."""
    with reporter.step("Connecting to the cluster") as step:
        kube = connect(record.kubeconfig, record.context)
        step.done(f"{kube.host}, Kubernetes {check_reachable(kube)}")
    return kube


# -- the class's Git users ----------------------------------------------------------------
def load_or_create_users(name: str, learners: list[str]) -> tuple[ClassCredentials, dict[str, Credentials]]:
    """The class's Git users, generated on first use and kept (0600) so re-runs reuse them.

    Only a missing file is a first use: a damaged one is an error, never a reason
    to mint passwords the class's Git server and the learners' kits do not know.
    """
    path = class_dir(name) / "credentials.json"
    fix = "restore it from your backup, or delete the class folder and run `gitops-lab class create` again"
    try:
        data = load_json_object(path, "Git credentials file", fix)
    except FileNotFoundError:
        data = {}
    if not isinstance(data.setdefault("learners", {}), dict):
        raise UsageError(f"the Git credentials file {path} has no learners object", fix=fix)
    fresh = lambda user: {"username": user, "password": new_password()}  # noqa: E731
    data.setdefault("instructor", fresh("instructor"))
    data.setdefault("engine", fresh("engine"))
    for learner in learners:
        data["learners"].setdefault(learner, fresh(learner))
    users = ClassCredentials(credentials_in(data, "instructor", path, fix), credentials_in(data, "engine", path, fix))
    mine = {k: credentials_in(data["learners"], k, path, fix) for k in data["learners"]}
    write_private_json(path, data, mode=0o600)
    return users, mine


def pushing_as(creds: Credentials) -> contextlib.AbstractContextManager:
    """The CLI's git commands authenticate as ``creds`` inside the block (see adapters/repo/git.py)."""
    return authenticated(creds)

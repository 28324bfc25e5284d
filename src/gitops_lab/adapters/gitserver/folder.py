"""A Git server that serves a folder of bare repositories over smart HTTP.

gitops-lab creates the repositories in the folder and, when the server reads a
users file (gitops-lab's own manifests/gitserver/server.py run on a host, with
GIT_ROOT and AUTH_FILE), writes the per-learner grants there. A plain
`git http-backend` on the same folder works too, but checks no credentials:
then ``enforces_access`` is False and says so.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.gitserver.base import ClassCredentials, GitServer, RepoGrant, users_file
from gitops_lab.adapters.gitserver.incluster import GitServerEndpoints
from gitops_lab.adapters.repo.git import Git
from gitops_lab.errors import UsageError
from gitops_lab.state import write_private_text

# The same settings as a repository server.py creates: history is never rewritten.
REPO_CONFIG = (("http.receivepack", "true"), ("receive.denyNonFastForwards", "true"), ("receive.denyDeletes", "true"))


def check_base_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise UsageError(
            f"the Git base URL {url!r} is not http(s)",
            fix="pass the URL the Git server is served at, e.g. http://127.0.0.1:8180",
        )


@dataclass
class FolderGitServer(GitServer):
    root: Path
    base_url: str
    # What the engines use, when they reach the server by another address.
    engine_base_url: str | None = None
    # The users file the server reads (server.py's AUTH_FILE); None: the server checks nothing.
    auth_file: Path | None = None
    kind: str = "folder"

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().resolve()
        if self.auth_file is not None:
            self.auth_file = Path(self.auth_file).expanduser().resolve()
        for url in filter(None, (self.base_url, self.engine_base_url)):
            check_base_url(url)

    @property
    def enforces_access(self) -> bool:  # type: ignore[override]
        return self.auth_file is not None

    def url(self) -> str:
        return self.base_url.rstrip("/")

    def describe(self) -> str:
        return f"your server, serving {self.root}"

    def endpoints(self, repository: str) -> GitServerEndpoints:
        host = f"{self.url()}/{repository}.git"
        engine = f"{(self.engine_base_url or self.base_url).rstrip('/')}/{repository}.git"
        return GitServerEndpoints(host, engine)

    def provision(self, grants: list[RepoGrant], users: ClassCredentials) -> list[str]:
        if not self.root.is_dir():
            raise UsageError(
                f"the Git server's folder {self.root} does not exist",
                fix="create it (and serve it) first, or pass the folder your Git server serves",
            )
        changed = []
        for grant in grants:
            path = self.root / f"{grant.repository}.git"
            if (path / "objects").is_dir():
                continue
            Git(self.root).run("init", "--quiet", "--bare", "--initial-branch", "main", str(path))
            for key, value in REPO_CONFIG:
                Git(path).run("config", key, value)
            changed.append(f"repository {grant.repository} created")
        if self.auth_file is not None:
            text = users_file(grants, users)
            # Compared only, then rewritten whole: a damaged users file is replaced, never a traceback.
            current = self.auth_file.read_bytes().decode("utf-8", "replace") if self.auth_file.is_file() else None
            if text != current:
                write_private_text(self.auth_file, text)
                changed.append(f"users file {self.auth_file} written")
        return changed

    def remove(self, repositories: list[str]) -> list[str]:
        removed = []
        for name in repositories:
            path = self.root / f"{name}.git"
            if path.is_dir():
                shutil.rmtree(path)
                removed.append(name)
        return removed

"""The engine's stand-in for release tests: each environment served by a real model-server process.

``LocalEngine.wait`` does what the engine does where it matters to a release:
it reads the environment's version from Git at the commit asked for and
(re)starts a model server process serving it. Verification then talks to that
process over HTTP, as it talks to a pod through the API server's proxy.
"""

from __future__ import annotations

from pathlib import Path

from helpers.gitutil import git
from helpers.modelserver_process import MODELS, Server

from gitops_lab.adapters.repo.layout import overlay_path, version_in_text
from gitops_lab.errors import EngineError
from gitops_lab.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.workflows.release import Deployment
from gitops_lab.workflows.verify import url_target


class LocalEngine:
    """Serves each environment from a local model server running the version Git names."""

    def __init__(self, wc: Path, tmp: Path):
        self.wc, self.tmp = wc, tmp
        self.servers: dict[str, Server] = {}
        self.serving: dict[str, tuple[str, Path]] = {}  # env: (version, model folder) its server runs
        self.applied: list[tuple[str, str]] = []
        self.broken: set[str] = set()  # environments whose model files are missing
        self.down = False

    def wait(self, env: str, commit: str, version: str, deadline: Deadline, reporter: Reporter) -> None:
        if self.down:
            raise EngineError("the engine does not answer: connection refused", fix="start it")
        in_git = version_in_text(git(self.wc, "show", f"{commit}:{overlay_path(env)}"), overlay_path(env))
        assert in_git == version, f"{env} at {commit[:7]} names {in_git}, not {version}"
        model_dir = self.tmp / f"empty-{env}" if env in self.broken else MODELS
        model_dir.mkdir(exist_ok=True)
        self.applied.append((env, version))
        if env in self.servers and self.serving.get(env) == (version, model_dir):
            return  # as an engine does: what is already served is left running (its counters too)
        if env in self.servers:
            self.servers.pop(env).stop()
        self.servers[env] = Server(version, model_dir)
        self.serving[env] = (version, model_dir)

    def deployment(self) -> Deployment:
        return Deployment(
            wait=self.wait, target=lambda env: url_target(env, f"http://127.0.0.1:{self.servers[env].port}")
        )

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def learner_sets_dev(wc: Path, version: str) -> str:
    """What a learner does: edit dev's version line, commit, push."""
    path = wc / overlay_path("dev")
    text = path.read_text()
    old = version_in_text(text, overlay_path("dev"))
    path.write_text(text.replace(f"gitops-lab.io/model-version: {old}", f"gitops-lab.io/model-version: {version}"))
    git(wc, "commit", "-qam", f"Try {version} in dev")
    git(wc, "push", "--quiet", "origin", "main")  # a write publishes only its own commit
    git(wc, "push", "-q", "origin", "HEAD:main")
    return git(wc, "rev-parse", "HEAD")

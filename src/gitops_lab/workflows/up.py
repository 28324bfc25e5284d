"""`up`: cluster, engine, repository, registration, then wait for all three environments.

Every step can run again: a second `up` finds everything in place, changes
nothing, and says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.base import EngineStatus, RepoAccess
from gitops_lab.adapters.repo import init_working_copy
from gitops_lab.adapters.repo.git import PASSWORD_VAR, USERNAME_VAR, Git
from gitops_lab.adapters.repo.layout import ENVIRONMENTS, RepoLayout
from gitops_lab.errors import UsageError
from gitops_lab.kube.client import check_reachable, connect
from gitops_lab.kube.deadline import Deadline
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState, environment_dir
from gitops_lab.workflows.environment import targets_for
from gitops_lab.workflows.rollout import Expectation, wait_until_served


@dataclass
class UpOptions:
    provider: str = "existing"
    engine: str = "argocd"
    engine_install: str = "managed"
    git_url: str | None = None
    # The URL engines fetch from, when it differs from what the host pushes to.
    engine_git_url: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    repo_path: str | None = None
    timeout: float = 600
    # Where managed mode downloads the release manifest from (tests, mirrors).
    install_source_url: str | None = None


@dataclass
class UpResult:
    name: str
    changed: list[str] = field(default_factory=list)
    repo_path: str = ""
    clone_url: str = ""
    engine: str = ""
    kube_host: str = ""
    environments: list[EngineStatus] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "changed": self.changed, "repo_path": self.repo_path, "clone_url": self.clone_url,
            "engine": self.engine, "kube_host": self.kube_host, "versions": self.versions,
            "environments": [e.to_dict() for e in self.environments],
        }


def up(options: UpOptions, reporter: Reporter, name: str, previous: EnvironmentState | None = None) -> UpResult:
    if options.provider != "existing":
        raise UsageError(
            f"provider {options.provider!r} is not available in this build",
            fix="use --provider existing with --kubeconfig/--context and --git-url",
        )
    if not options.git_url:
        raise UsageError("--git-url is required with --provider existing",
                         fix="pass the URL of an empty Git repository the cluster can reach, e.g. --git-url https://git.example.com/lab.git")
    if options.git_url.startswith(("file://", "git://")) or "://" not in options.git_url:
        raise UsageError(f"engines cannot fetch from {options.git_url!r}",
                         fix="use an http(s) or ssh URL (Flux accepts nothing else)")
    deadline = Deadline(options.timeout)
    result = UpResult(name=name, engine=options.engine)

    with reporter.step("Connecting to the cluster") as step:
        kube = connect(options.kubeconfig, options.context)
        version = check_reachable(kube)
        step.done(f"{kube.host}, Kubernetes {version}")
        result.kube_host = kube.host

    engine = engine_for(options.engine, kube)
    with reporter.step(f"{'Installing' if options.engine_install == 'managed' else 'Checking'} {options.engine}"):
        report = engine.install(options.engine_install, reporter, deadline, options.install_source_url)
    if report.changed:
        result.changed.append(f"engine {options.engine} installed")

    repo_path = Path(options.repo_path or (previous.repo_path if previous and previous.repo_path else
                                           environment_dir(name) / "repo"))
    with reporter.step("Seeding the lab repository") as step:
        seeded = init_working_copy(repo_path, options.git_url)
        step.done(seeded.action)
    if seeded.changed:
        result.changed.append(f"repository {seeded.action}")
    result.repo_path, result.clone_url = str(seeded.path), options.git_url

    layout = RepoLayout(seeded.path)
    targets = targets_for(layout)
    access = RepoAccess(url=options.engine_git_url or options.git_url,
                        username=os.environ.get(USERNAME_VAR), password=os.environ.get(PASSWORD_VAR))
    with reporter.step(f"Registering {', '.join(ENVIRONMENTS)} with {options.engine}") as step:
        changed = engine.register(targets, access)
        step.done(f"{len(changed)} objects changed" if changed else "no change")
    result.changed += changed

    state = previous or EnvironmentState(name=name)
    state.repo_path, state.remote_url = str(seeded.path), options.git_url
    state.provider, state.engine, state.engine_install = options.provider, options.engine, options.engine_install
    state.kubeconfig, state.context, state.engine_repo_url = kube.kubeconfig, options.context, access.url
    state.save()

    head = Git(seeded.path).head()
    for target in targets:
        expect = Expectation(target.name, target.namespace, head, layout.model_version(target.name))
        wait_until_served(engine, expect, deadline, reporter)
        result.versions[target.name] = expect.version or ""
    result.environments = [engine.status(t.name) for t in targets]
    return result

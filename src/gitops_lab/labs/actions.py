"""What each action of the vocabulary does. Doers change Git or the cluster and
wait; assertions look and return a CheckResult. Nothing here prints: progress
goes to the reporter the CLI handed down. The registry (labs/vocabulary.py)
names each function once, with its title and parameters; the runner
(labs/runner.py) dispatches through it.

Git is read as pushed (``origin/main`` after a fetch): what the engine sees is
what counts, so a commit the learner forgot to push does not pass a check.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import (
    DEPLOYMENT,
    ENVIRONMENTS,
    VERSION_LABEL,
    RepoLayout,
    overlay_path,
    previous_environment,
    replicas_in_text,
    version_in_text,
)
from gitops_lab.adapters.repo.publish import REMOTE_BRANCH
from gitops_lab.adapters.repo.pushed import follow_pushed
from gitops_lab.adapters.repo.seed import SEED_TAG
from gitops_lab.errors import GitOpsLabError, RepoStateError, UsageError
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState

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
            from gitops_lab.workflows.environment import open_environment

            self._environment = open_environment(self.state, self.kubeconfig, self.context, self.repo)
        return self._environment

    def deadline(self):
        from gitops_lab.kube.deadline import Deadline

        return Deadline(self.timeout)

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
        return REMOTE_BRANCH

    def unpushed(self) -> list[str]:
        """``sha subject`` of each local commit the remote does not have, newest first."""
        ref = self.pushed()
        if ref == "HEAD":
            return []
        return self.git.out("log", "--format=%h %s", f"{ref}..HEAD").splitlines()

    def show(self, path: str, ref: str | None = None) -> str | None:
        proc = self.git.run("show", f"{ref or self.pushed()}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def since(self) -> str | None:
        """The lab's start point on the pushed branch: its newest reset commit, else its start tag."""
        git, ref = self.git, self.pushed()
        tag = git.run(
            "rev-parse", "--verify", "--quiet", f"refs/tags/{start_tag(self.lab.id)}^{{commit}}", check=False
        ).stdout.strip()
        from gitops_lab.adapters.repo.history import log_entries

        for entry in log_entries(git, ref):
            if entry.sha == tag:
                return entry.sha
            if entry.trailer(t.ACTION) == RESET_ACTION and entry.trailer(LAB_TRAILER) == self.lab.id:
                return entry.sha
        return None

    def converge(self, envs: list[str], commit: str) -> None:
        """Ask the engine to reconcile ``envs``, then wait until each serves ``commit`` as Git says."""
        from gitops_lab.workflows.converge import converge

        converge(self.environment(), envs, commit, self.deadline(), self.reporter)

    def environment_to_wait_on(self):
        """The LabEnvironment a change waits on, or None without a cluster."""
        return self.environment() if self.has_cluster else None


# -- overlay fields --------------------------------------------------------------
_REPLICAS = re.compile(r"(-\s*name:\s*" + DEPLOYMENT + r"\s*\n\s*count:\s*)(\d+)")


def set_overlay_replicas(text: str, count: int, where: str) -> str:
    if not _REPLICAS.search(text):
        raise RepoStateError(
            f"{where} has no `replicas:` entry for {DEPLOYMENT}", fix="restore the overlay from the seed tag"
        )
    return _REPLICAS.sub(lambda m: f"{m.group(1)}{count}", text, count=1)


# -- doers ----------------------------------------------------------------------
def _targets(env: str) -> list[str]:
    return list(ENVIRONMENTS) if env == "all" else [env]


def restore_tree(git: Git, ref: str, paths: list[str], message: str, allow_empty: bool = False) -> str | None:
    """Make ``paths`` equal ``ref`` in one new commit (history is never rewritten). None: nothing changed."""
    commit = git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).stdout.strip()
    if not commit:
        raise ActionFailed(
            f"cannot restore from {ref}: no such tag or commit in {git.path}",
            fix="fetch it (`git fetch --tags`) or start the lab again",
        )
    git.run("restore", f"--source={commit}", "--staged", "--worktree", "--", *paths)
    if git.ok("diff", "--cached", "--quiet") and not allow_empty:
        return None
    git.run("commit", "--quiet", "--allow-empty", "--file", "-", input=message)
    return git.head()


def do_restore(ctx: LabContext, p: dict[str, Any]) -> None:
    git = ctx.git
    publish.check_clean(git)
    publish.catch_up(git)
    ref = p.get("ref") or SEED_TAG
    subject = (
        p.get("message") or f"Lab {ctx.lab.id}: restore {', '.join(p.get('paths') or ['the repository'])} from {ref}"
    )
    message = t.compose(subject, [(t.ACTION, "restore"), (LAB_TRAILER, ctx.lab.id), ("Restored-From", ref)])
    with publish.published_or_undone(git, f"lab {ctx.lab.id}'s restore from {ref}"):
        if restore_tree(git, ref, p.get("paths") or ["."], message):
            publish.push(git)


def do_promote(ctx: LabContext, p: dict[str, Any]) -> None:
    from gitops_lab.workflows.promotion import run_promotion

    result = run_promotion(
        ctx.reporter,
        ctx.repo,
        p["from"],
        p["to"],
        p.get("version"),
        environment=ctx.environment_to_wait_on(),
        deadline=ctx.deadline(),
    )
    if not result.changed:
        ctx.reporter.info(result.message)


def do_rollback(ctx: LabContext, p: dict[str, Any]) -> None:
    from gitops_lab.workflows.promotion import run_rollback

    result = run_rollback(
        ctx.reporter, ctx.repo, p["env"], p.get("to"), environment=ctx.environment_to_wait_on(), deadline=ctx.deadline()
    )
    if not result.changed:
        ctx.reporter.info(result.message)


def do_approve(ctx: LabContext, p: dict[str, Any]) -> None:
    from gitops_lab.adapters.repo.approval import record_approval

    record_approval(ctx.repo, p["env"], p["version"], p["by"])


def _source(p: dict[str, Any]) -> str:
    return p.get("from") or previous_environment(p["to"]) or p["to"]


def do_observe(ctx: LabContext, p: dict[str, Any]) -> None:
    """Do what the learner is asked to look at, through the same code the CLI uses, recorded the same way."""
    from gitops_lab.labs import observations

    name = ctx.name or "default"
    command = p["command"]
    if command == "history":
        observations.read_history(name, ctx.repo, p["env"])
        return
    if command == "status":
        from gitops_lab.workflows.status import environment_reports

        observations.status_seen(name, environment_reports(ctx.environment()))
        return
    if command == "verify":
        observations.verified(name, _verify(ctx, p["env"]))
        return
    src = _source(p)
    version = p.get("version") or ctx.layout.model_version(src)
    if command == "gate-run":
        observations.gate_run(name, ctx.repo, src, p["to"], version, [p["gate"]] if p.get("gate") else None)
        return
    from gitops_lab.errors import GateFailed
    from gitops_lab.workflows.promotion import run_promotion

    try:
        run_promotion(ctx.reporter, ctx.repo, src, p["to"], version)
    except GateFailed as refused:
        observations.refused_promotion(name, src, p["to"], refused)
        return
    raise ActionFailed(f"observe: the promotion of {version} to {p['to']} was meant to be refused, and went through")


def _verify(ctx: LabContext, env: str):
    """`gitops-lab verify --env ENV`: the model server asked through the API server's proxy."""
    from gitops_lab.workflows.verify import expected_from_git, kube_target, verify

    lab = ctx.environment()
    expected = expected_from_git(ctx.repo, env)
    return verify(
        kube_target(lab.kube, env, lab.namespace(env)),
        expected.version,
        expected.artifact,
        expected.settings,
        ctx.deadline(),
        ctx.reporter,
    )


def do_commit_file(ctx: LabContext, p: dict[str, Any]) -> None:
    git = ctx.git
    publish.check_clean(git)
    publish.catch_up(git)
    env = p.get("env")
    rel = p.get("path") or overlay_path(str(env))
    target = ctx.repo / rel
    before = target.read_text(encoding="utf-8") if target.is_file() else ""
    if "content" in p:
        after = p["content"]
    elif "replace" in p:
        old, new = str(p["replace"]["old"]), str(p["replace"]["new"])
        if old not in before:
            raise ActionFailed(f"{rel} does not contain {old!r}, so it cannot be replaced")
        after = before.replace(old, new, 1)
    else:
        after = before
        for key, value in p["set"].items():
            if key == "replicas":
                after = set_overlay_replicas(after, int(value), rel)
            elif key == "model_version":
                version_in_text(after, rel)
                target.write_text(after, encoding="utf-8")
                RepoLayout(ctx.repo).set_model_version(env or _env_of(rel), str(value))
                after = target.read_text(encoding="utf-8")
    if after == before:
        ctx.reporter.info(f"{rel} already has that content; nothing to commit")
        return
    trailers = [(str(k), str(v)) for k, v in (p.get("trailers") or {}).items()]
    message = t.compose(p["message"], trailers) if trailers else p["message"].strip() + "\n"
    author = {}
    if p.get("author"):
        from gitops_lab.adapters.repo.identity import Identity

        who = Identity.parse(p["author"])
        author = {"GIT_AUTHOR_NAME": who.name, "GIT_AUTHOR_EMAIL": who.email}
    with publish.published_or_undone(git, f"lab {ctx.lab.id}'s commit to {rel}"):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(after, encoding="utf-8")
        publish.commit(Git(ctx.repo, env=author), [rel], message)
        publish.push(git)
    if env and p.get("wait", True) and ctx.has_cluster:
        ctx.converge([env], git.head())


def _env_of(rel: str) -> str:
    for env in ENVIRONMENTS:
        if rel == overlay_path(env):
            return env
    raise ActionFailed(f"set: model_version needs an overlay; {rel} is none")


def do_sync(ctx: LabContext, p: dict[str, Any]) -> None:
    ctx.environment()  # no cluster: say so before reading Git
    ctx.converge(_targets(p["env"]), ctx.git.out("rev-parse", ctx.pushed(refresh=True)))


def do_patch_live(ctx: LabContext, p: dict[str, Any]) -> None:
    lab = ctx.environment()
    kind, name = p.get("kind", "Deployment"), p.get("name", DEPLOYMENT)
    lab.engine.applier.merge_patch(p.get("api_version", "apps/v1"), kind, name, p["patch"], lab.namespace(p["env"]))


def do_mark_live(ctx: LabContext, p: dict[str, Any]) -> None:
    dep = _deployment(ctx, p["env"])
    ctx.marks[f"generation/{p['env']}"] = (dep or {}).get("metadata", {}).get("generation", 0)


# -- assertions ---------------------------------------------------------------------
def _deployment(ctx: LabContext, env: str) -> dict[str, Any] | None:
    lab = ctx.environment()
    return lab.engine.applier.get("apps/v1", "Deployment", DEPLOYMENT, lab.namespace(env))


def check_serves(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    from gitops_lab.kube.rollout import rollout_verdict

    env, version = p["env"], p["version"]
    ok, seen = rollout_verdict(_deployment(ctx, env), VERSION_LABEL, version)
    return CheckResult(ok, f"{env} serves {version} ({seen})" if ok else f"{env} does not serve {version}: {seen}")


def check_synced_healthy(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    lab = ctx.environment()
    head = ctx.git.out("rev-parse", ctx.pushed())
    problems = []
    for env in _targets(p["env"]):
        state = lab.engine.status(env)
        if state.revision != head:
            problems.append(
                f"{env}: {lab.engine.name} applied {(state.revision or 'nothing')[:7]}, not the pushed head {head[:7]}"
            )
        elif not (state.synced and state.healthy):
            problems.append(
                f"{env}: {state.sync_state}, {state.health_state}" + (f" ({state.message})" if state.message else "")
            )
    if problems:
        return CheckResult(False, "; ".join(problems))
    return CheckResult(True, f"{p['env']}: synced to {head[:7]} and healthy")


def _git_facts(ctx: LabContext, env: str) -> tuple[str, int | None]:
    text = ctx.show(overlay_path(env)) or ""
    return version_in_text(text, overlay_path(env)), replicas_in_text(text, DEPLOYMENT)


def check_live_matches_git(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    from gitops_lab.kube.rollout import rollout_verdict
    from gitops_lab.workflows.status import drift, git_expectation

    env = p["env"]
    expected = git_expectation(ctx.repo, env, ctx.git.out("rev-parse", ctx.pushed()))
    dep = _deployment(ctx, env)
    if dep is None:
        return CheckResult(False, f"{env} has no Deployment {DEPLOYMENT}")
    differences = drift(dep, expected)
    if differences:
        return CheckResult(False, f"{env} differs from Git: {'; '.join(differences)}")
    ok, seen = rollout_verdict(dep, VERSION_LABEL, expected.version)
    if not ok:
        return CheckResult(False, f"{env} matches Git but has not rolled out: {seen}")
    return CheckResult(
        True, f"{env} matches Git: {expected.version}, {replicas_phrase(dep.get('spec', {}).get('replicas'))}, {seen}"
    )


def replicas_phrase(count: int | None) -> str:
    return f"{count} replica{'' if count == 1 else 's'}"


def check_replicas(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    env, count = p["env"], p["count"]
    _version, in_git = _git_facts(ctx, env)
    if in_git != count:
        return CheckResult(
            False, f"{overlay_path(env)} on the pushed branch sets {replicas_phrase(in_git)}, not {count}"
        )
    if not ctx.has_cluster:
        return CheckResult(True, f"{overlay_path(env)} sets {replicas_phrase(count)}")
    live = check_live_matches_git(ctx, {"env": env})
    if not live.passed:
        return CheckResult(False, f"Git sets {replicas_phrase(count)}, but {live.message}")
    return CheckResult(True, f"{env} runs {replicas_phrase(count)}, as Git says")


def check_drift_healed(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    env = p["env"]
    mark = ctx.marks.get(f"generation/{env}")
    if mark is None:
        return CheckResult(False, f"no mark_live for {env} was recorded, so drift cannot be told apart")
    dep = _deployment(ctx, env) or {}
    generation = dep.get("metadata", {}).get("generation", 0)
    if generation <= mark:
        return CheckResult(
            False, f"{env}'s Deployment was not changed since the step started (generation {generation})"
        )
    live = check_live_matches_git(ctx, {"env": env})
    if not live.passed:
        return CheckResult(False, f"{env} was edited by hand and is not healed yet: {live.message}")
    return CheckResult(True, f"{env} was edited by hand (generation {mark} -> {generation}) and healed: {live.message}")


def _since_lab_start(ctx: LabContext) -> set[str]:
    """The pushed commits since the lab's start point."""
    since = ctx.since()
    ref = ctx.pushed()
    return set(ctx.git.out("rev-list", f"{since}..{ref}" if since else ref).split())


_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


def image_problems(deployment: dict[str, Any], pods: list[dict[str, Any]], pinned: list[str]) -> list[str]:
    """Why a Deployment's images are not pinned to a digest known to work, one line each; [] when they are.

    A digest counts when versions.yaml pins that exact reference, or when a pod
    of the Deployment reports running it (containerStatuses[].imageID): a
    made-up digest would never pull, so it is neither.
    """
    running = {
        status.get("imageID", "").rpartition("@")[2]
        for pod in pods
        for status in (pod.get("status", {}).get("containerStatuses") or [])
    }
    problems = []
    template = deployment.get("spec", {}).get("template", {}).get("spec", {})
    for container in (template.get("initContainers") or []) + (template.get("containers") or []):
        image = container.get("image", "")
        digest = _DIGEST.search(image)
        if not digest:
            problems.append(f"container {container.get('name')} runs {image}, which is not pinned by @sha256 digest")
        elif image not in pinned and digest.group(1) not in running:
            problems.append(
                f"container {container.get('name')} is pinned to {digest.group(1)[:19]}..., a digest "
                "gitops-lab does not ship and no pod runs (it would never pull)"
            )
    return problems


def check_image_pinned(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    from gitops_lab.versions import pinned_images

    lab = ctx.environment()
    problems = []
    for env in _targets(p["env"]):
        dep = _deployment(ctx, env)
        if dep is None:
            problems.append(f"{env} has no Deployment {DEPLOYMENT}")
            continue
        selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"].get("matchLabels", {}).items())
        pods = lab.engine.applier.list("v1", "Pod", lab.namespace(env), selector)
        problems += [f"{env}: {line}" for line in image_problems(dep, pods, pinned_images())]
    if problems:
        return CheckResult(False, "; ".join(problems))
    return CheckResult(True, f"{p['env']}: every image is pinned to a digest that gitops-lab ships or a pod runs")


_NOUNS = {"promote": "promotion", "approve": "approval", "manual": "manual change", "deploy": "deployment"}


def check_history_contains(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    from gitops_lab.adapters.repo.history import history

    env, version = p["env"], p.get("version")
    actions = [p["action"]] if isinstance(p["action"], str) else list(p["action"])
    pushed = _since_lab_start(ctx)
    wanted = p.get("trailers") or {}
    found = [
        e
        for e in history(ctx.repo, env, ctx.pushed())
        if e.commit in pushed
        and e.action in actions
        and (version is None or e.version == version)
        and all(str(e.trailers.get(k, "")).lower().startswith(str(v).lower()) for k, v in wanted.items())
    ]
    nouns = " or ".join(_NOUNS.get(a, a) for a in actions)
    if "approve" in actions:
        what = f"pushed {nouns}" + (f" of {version}" if version else "") + f" for {env}"
    else:
        what = f"pushed {nouns} of {env}" + (f" to {version}" if version else "")
    if wanted:
        what += " with " + ", ".join(f"{k}: {v}" for k, v in wanted.items())
    present = p.get("expect", "present") == "present"
    if bool(found) == present:
        where = f" ({found[0].commit[:7]}: {found[0].subject})" if found else ""
        return CheckResult(True, f"history {'has a' if found else 'has no'} {what}{where}")
    if present:
        return CheckResult(False, f"history has no {what} since the lab started")
    return CheckResult(False, f"history has a {what} ({found[0].commit[:7]}), and should not")


def check_approved(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    from gitops_lab.adapters.repo.history import history
    from gitops_lab.adapters.repo.identity import Identity
    from gitops_lab.adapters.repo.approval import approval_verdict
    from gitops_lab.gates.config import CONFIG_FILE, config_from_text

    env, version = p["env"], p["version"]
    ref = ctx.pushed()
    last = next((e for e in history(ctx.repo, env, ref) if e.changed), None)
    if last is None or last.commit not in _since_lab_start(ctx) or last.version != version:
        runs = f"; it runs {last.version}" if last else ""
        return CheckResult(False, f"{env} was not promoted to {version} since the lab started{runs}")
    back = (
        f"to get back on track, `gitops-lab rollback --env {env}`, then `gitops-lab approve --env {env} "
        f"--version {version} --by 'NAME <EMAIL>'` and `gitops-lab promote --to {env}`"
    )
    if last.action != "promote":
        return CheckResult(
            False,
            f"{env} moved to {version} in {last.commit[:7]} ({last.subject}, {last.action} by "
            f"{last.author}), not by `gitops-lab promote`, so no gate checked an approval; {back}",
        )
    before = f"{last.commit}^"
    config = config_from_text(ctx.show(CONFIG_FILE, before), f"{CONFIG_FILE} at {last.commit[:7]}^")
    verdict = approval_verdict(
        ctx.git, env, version, config.settings.get("approval", {}), Identity(last.author, last.email), rev=before
    )
    if verdict.approval is None:
        return CheckResult(
            False,
            f"the promotion {last.commit[:7]} of {version} to {env} was not approved before it "
            f"was made: {verdict.reason}; {back}",
        )
    return CheckResult(
        True, f"{last.commit[:7]} promoted {version} to {env} (by {last.author}) after {verdict.summary}"
    )


HOW = {
    "gate-run": lambda p: (
        f"`gitops-lab gate run --to {p.get('to')}" + (f" --version {p['version']}" if p.get("version") else "") + "`"
    ),
    "promote": lambda p: (
        f"`gitops-lab promote --to {p.get('to')}"
        + (f" --version {p['version']}" if p.get("version") else "")
        + "` (refused by its gates)"
    ),
    "history": lambda p: f"`gitops-lab history --env {p.get('env')}`",
    "status": lambda p: "`gitops-lab status`",
    "verify": lambda p: f"`gitops-lab verify --env {p.get('env')}`",
}


def check_observed(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    from gitops_lab.labs import observations

    commands = [p["command"]] if isinstance(p["command"], str) else list(p["command"])
    since = float(ctx.marks.get(observations.STEP_STARTED, 0))
    facts = {key: p.get(key) for command in commands for key in observations.COMMANDS[command]}
    found = observations.matching(ctx.name or "default", commands, since, **facts)
    ways = " or ".join(HOW[c](p) for c in commands)
    if not found:
        return CheckResult(False, f"this step asks you to look first: run {ways}")
    return CheckResult(True, f"you ran {ways}")


def check_git_version(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    version, _ = _git_facts(ctx, p["env"])
    ok = version == p["version"]
    return CheckResult(
        ok, f"{overlay_path(p['env'])} on the pushed branch names {version}" + ("" if ok else f", not {p['version']}")
    )


def check_file_contains(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    text = ctx.show(p["path"])
    present = text is not None and p["text"] in text
    want = p.get("expect", "present") == "present"
    state = "contains" if present else ("does not contain" if text is not None else "does not exist, so lacks")
    return CheckResult(present == want, f"{p['path']} on the pushed branch {state} {p['text']!r}")


def check_gate(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    from gitops_lab.gates import run_gates

    dst = p["to"]
    src = _source(p)
    ctx.pushed()
    results = run_gates(ctx.repo, src, dst, p["version"], only=[p["name"]])
    result = next((r for r in results if r.name == p["name"]), None)
    if result is None:
        return CheckResult(False, f"gate {p['name']!r} did not run for {dst}")
    verdict = "pass" if result.passed else "fail"
    if verdict == p["expect"]:
        # The details are what the step asks the learner to read in `gate run`: not given away here.
        return CheckResult(True, f"gate {p['name']} on {p['version']} -> {dst}: {verdict}, as expected")
    return CheckResult(
        False, f"gate {p['name']} on {p['version']} -> {dst}: {verdict} ({result.summary}); expected {p['expect']}"
    )


# -- python escape hatch -----------------------------------------------------------------
def call_python(ctx: LabContext, p: dict[str, Any]) -> Any:
    module_name, function = p["function"].split(":")
    path = ctx.lab.folder / f"{module_name}.py"
    qualified = f"gitops_lab_lab_{ctx.lab.id.replace('-', '_')}_{module_name}"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} cannot be loaded as a Python module", fix="name a .py file next to lab.yaml")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return getattr(module, function)(ctx, **(p.get("args") or {}))


def check_python(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    value = call_python(ctx, p)
    if isinstance(value, CheckResult):
        return value
    if isinstance(value, tuple):
        return CheckResult(bool(value[0]), str(value[1]) if len(value) > 1 else "")
    return CheckResult(bool(value), f"{p['function']} returned {value!r}")

"""The doers of the vocabulary: actions that change Git or the cluster and wait (setup, solve, reset).
Nothing here prints: progress goes to the reporter the CLI handed down."""

from __future__ import annotations

import re
from typing import Any

from gitops_lab import observations
from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.approval import record_approval
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.identity import Identity
from gitops_lab.adapters.repo.layout import DEPLOYMENT, ENVIRONMENTS, RepoLayout, overlay_path, version_in_text
from gitops_lab.adapters.repo.seed import SEED_TAG
from gitops_lab.errors import GateFailed, RepoStateError
from gitops_lab.labs.actions.context import (
    LAB_TRAILER,
    ActionFailed,
    LabContext,
    live_deployment,
    promotion_source,
    targets,
)
from gitops_lab.textfiles import read_exact, write_exact
from gitops_lab.workflows import observed
from gitops_lab.workflows.automation_setup import FOLDER as AUTOMATION_FOLDER
from gitops_lab.workflows.promotion import run_promotion, run_rollback
from gitops_lab.workflows.status import environment_reports
from gitops_lab.workflows.verify import expected_from_git, kube_target, verify

# -- overlay fields --------------------------------------------------------------
_REPLICAS = re.compile(r"(-\s*name:\s*" + DEPLOYMENT + r"\s*\n\s*count:\s*)(\d+)")


def set_overlay_replicas(text: str, count: int, where: str) -> str:
    if not _REPLICAS.search(text):
        raise RepoStateError(
            f"{where} has no `replicas:` entry for {DEPLOYMENT}", fix="restore the overlay from the seed tag"
        )
    return _REPLICAS.sub(lambda m: f"{m.group(1)}{count}", text, count=1)


# -- doers ----------------------------------------------------------------------
def restore_tree(git: Git, ref: str, paths: list[str], message: str, allow_empty: bool = False) -> str | None:
    """Make ``paths`` equal ``ref`` in one new commit (history is never rewritten). None: nothing changed.

    The whole tree (``.``) leaves automation/ out: the in-cluster release automation's Deployment is the
    platform's (`up --release-automation`), part of no lab's state, and restoring it away would stop it.
    """
    if paths == ["."]:
        paths = [".", f":(exclude){AUTOMATION_FOLDER}"]
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
    result = run_rollback(
        ctx.reporter, ctx.repo, p["env"], p.get("to"), environment=ctx.environment_to_wait_on(), deadline=ctx.deadline()
    )
    if not result.changed:
        ctx.reporter.info(result.message)


def do_approve(ctx: LabContext, p: dict[str, Any]) -> None:
    record_approval(ctx.repo, p["env"], p["version"], p["by"])


def do_observe(ctx: LabContext, p: dict[str, Any]) -> None:
    """Do what the learner is asked to look at, through the same code the CLI uses, recorded the same way."""
    name = ctx.name or "default"
    command = p["command"]
    if command == "history":
        observed.read_history(name, ctx.repo, p["env"])
        return
    if command == "status":
        observations.status_seen(name, environment_reports(ctx.environment()))
        return
    if command == "verify":
        observations.verified(name, _verify(ctx, p["env"]))
        return
    src = promotion_source(p)
    version = p.get("version") or ctx.layout.model_version(src)
    if command == "gate-run":
        observed.gate_run(name, ctx.repo, src, p["to"], version, [p["gate"]] if p.get("gate") else None)
        return
    try:
        run_promotion(ctx.reporter, ctx.repo, src, p["to"], version)
    except GateFailed as refused:
        observations.refused_promotion(name, src, p["to"], refused)
        return
    raise ActionFailed(f"observe: the promotion of {version} to {p['to']} was meant to be refused, and went through")


def _verify(ctx: LabContext, env: str):
    """`gitops-lab verify --env ENV`: the model server asked through the API server's proxy."""
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
    before = read_exact(target) if target.is_file() else ""
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
                write_exact(target, after)
                RepoLayout(ctx.repo).set_model_version(env or _env_of(rel), str(value))
                after = read_exact(target)
    if after == before:
        ctx.reporter.info(f"{rel} already has that content; nothing to commit")
        return
    trailers = [(str(k), str(v)) for k, v in (p.get("trailers") or {}).items()]
    message = t.compose(p["message"], trailers) if trailers else p["message"].strip() + "\n"
    author = {}
    if p.get("author"):
        who = Identity.parse(p["author"])
        author = {"GIT_AUTHOR_NAME": who.name, "GIT_AUTHOR_EMAIL": who.email}
    with publish.published_or_undone(git, f"lab {ctx.lab.id}'s commit to {rel}"):
        target.parent.mkdir(parents=True, exist_ok=True)
        write_exact(target, after)
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
    ctx.converge(targets(p["env"]), ctx.git.out("rev-parse", ctx.pushed(refresh=True)))


def do_patch_live(ctx: LabContext, p: dict[str, Any]) -> None:
    lab = ctx.environment()
    kind, name = p.get("kind", "Deployment"), p.get("name", DEPLOYMENT)
    lab.engine.applier.merge_patch(p.get("api_version", "apps/v1"), kind, name, p["patch"], lab.namespace(p["env"]))


def do_mark_live(ctx: LabContext, p: dict[str, Any]) -> None:
    dep = live_deployment(ctx, p["env"])
    ctx.marks[f"generation/{p['env']}"] = (dep or {}).get("metadata", {}).get("generation", 0)

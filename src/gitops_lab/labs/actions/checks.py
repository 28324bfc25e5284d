"""The assertions of the vocabulary: each looks (Git as pushed, the cluster, the learner's recorded
observations) and returns a CheckResult; none changes anything."""

from __future__ import annotations

import re
from typing import Any

from gitops_lab import observations
from gitops_lab.adapters.repo.approval import approval_verdict
from gitops_lab.adapters.repo.history import history
from gitops_lab.adapters.repo.identity import Identity
from gitops_lab.adapters.repo.layout import DEPLOYMENT, VERSION_LABEL, overlay_path
from gitops_lab.gates import run_gates
from gitops_lab.gates.config import config_at
from gitops_lab.kube.rollout import rollout_verdict
from gitops_lab.labs.actions.context import CheckResult, LabContext, live_deployment, promotion_source, targets
from gitops_lab.versions import pinned_images
from gitops_lab.workflows.status import drift, git_expectation


def check_serves(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    env, version = p["env"], p["version"]
    ok, seen = rollout_verdict(live_deployment(ctx, env), VERSION_LABEL, version)
    return CheckResult(ok, f"{env} serves {version} ({seen})" if ok else f"{env} does not serve {version}: {seen}")


def check_synced_healthy(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    lab = ctx.environment()
    head = ctx.git.out("rev-parse", ctx.pushed())
    problems = []
    for env in targets(p["env"]):
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
    snapshot = ctx.snapshot()
    return snapshot.model_version(env), snapshot.replicas(env)


def check_live_matches_git(ctx: LabContext, p: dict[str, Any]) -> CheckResult:
    env = p["env"]
    expected = git_expectation(ctx.repo, env, ctx.git.out("rev-parse", ctx.pushed()))
    dep = live_deployment(ctx, env)
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
    dep = live_deployment(ctx, env) or {}
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
    lab = ctx.environment()
    problems = []
    for env in targets(p["env"]):
        dep = live_deployment(ctx, env)
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
    config = config_at(ctx.snapshot(before))
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
    dst = p["to"]
    src = promotion_source(p)
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

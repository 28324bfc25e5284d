"""The action vocabulary of lab steps: the one registry of lab actions.

Each action is registered once, here: its name (and any older spelling), its
parameters, its title (the status line while a doer runs) and the function
that runs it (in labs/actions/: doers.py, checks.py, hooks.py). The loader
validates with this table, the runner (``run_action``, ``evaluate_action``)
dispatches through it, and the authoring guide's tables document it (a test
holds the three together). Kinds:

- ``do``: changes something (Git, the cluster) and waits for it; used in
  ``setup``, ``solve`` and ``reset``;
- ``assert``: looks, changes nothing, and returns pass or fail with a message;
  used in ``check``.

``python`` is the escape hatch and may appear anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitops_lab.labs.actions import checks, doers, hooks
from gitops_lab.labs.actions.context import CheckResult, LabContext
from gitops_lab.adapters.repo.seed import SEED_TAG

from gitops_lab.adapters.repo.layout import ENVIRONMENTS

ENV_OR_ALL = (*ENVIRONMENTS, "all")


@dataclass(frozen=True)
class Param:
    type: str  # str, int, bool, mapping, list, str_or_list, version, env, env_or_all
    required: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""

    def form(self) -> str:
        if self.choices:
            return " | ".join(self.choices)
        return {
            "env": " | ".join(ENVIRONMENTS),
            "env_or_all": " | ".join(ENV_OR_ALL),
            "version": "vN (v1, v2, ...)",
            "mapping": "a mapping",
            "list": "a list",
            "str_or_list": "str or a list of str",
        }.get(self.type, self.type)


Params = dict[str, Any]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    kind: str  # "do", "assert" or "any"
    doc: str
    params: dict[str, Param] = field(default_factory=dict)
    needs_cluster: bool = False
    example: str = ""
    #: Runs a doer (kind "do" or "any").
    do: Callable[[LabContext, Params], Any] | None = None
    #: The status line while the doer runs.
    title: Callable[[Params], str] | None = None
    #: Runs an assertion (kind "assert" or "any").
    check: Callable[[LabContext, Params], CheckResult] | None = None
    #: Other names a lab may use for this action.
    aliases: tuple[str, ...] = ()

    def form(self) -> str:
        """The expected form, for error messages: ``promote: {from: ..., to: ..., version?: ...}``."""
        parts = [f"{name}{'' if p.required else '?'}: {p.form()}" for name, p in self.params.items()]
        return f"{self.name}: {{{', '.join(parts)}}}"


_ENV = Param("env", True, doc="environment")
_HINT = Param("str", doc="hint shown when this assertion fails (default: the step's hint)")

_SPECS = [
    # -- doers: Git ------------------------------------------------------------
    ActionSpec(
        "restore",
        "do",
        "Restore paths of the repository from a Git ref with one new pushed commit (no-op when equal); "
        "the usual first setup action, so a lab starts from a known state whatever came before.",
        {
            "ref": Param("str", doc="tag or commit; default `gitops-lab/seed`"),
            "paths": Param("list", doc="paths to restore; default the whole tree"),
            "message": Param("str", doc="commit subject"),
        },
        example="restore: {}",
        do=doers.do_restore,
        title=lambda p: f"Restoring {', '.join(p.get('paths') or ['the repository'])} from {p.get('ref') or SEED_TAG}",
    ),
    ActionSpec(
        "promote",
        "do",
        "Promote a model version, exactly as `gitops-lab promote` does (gates, trailers, push), then wait "
        "until the destination serves it when a cluster is set up.",
        {"from": Param("env", True), "to": Param("env", True), "version": Param("version")},
        example="promote: {from: dev, to: staging, version: v2}",
        do=doers.do_promote,
        title=lambda p: f"Promoting {p.get('version') or 'the version'} from {p['from']} to {p['to']}",
    ),
    ActionSpec(
        "rollback",
        "do",
        "Roll an environment back, exactly as `gitops-lab rollback` does, then wait until it serves the version.",
        {"env": _ENV, "to": Param("version")},
        example="rollback: {env: prod}",
        do=doers.do_rollback,
        title=lambda p: f"Rolling back {p['env']}" + (f" to {p['to']}" if p.get("to") else ""),
    ),
    ActionSpec(
        "approve",
        "do",
        "Record an approval commit, exactly as `gitops-lab approve` does.",
        {
            "env": _ENV,
            "version": Param("version", True),
            "by": Param("str", True, doc="the approver's Git identity, `Name <email>`: the commit's author"),
        },
        example="approve: {env: prod, version: v2, by: 'Alice <alice@example.com>'}",
        do=doers.do_approve,
        title=lambda p: f"Approving {p['version']} for {p['env']} as {p['by']}",
    ),
    ActionSpec(
        "commit_file",
        "do",
        "Change one file and push it as one commit, like a learner's `git commit && git push`. With `env`, "
        "the file is that environment's overlay and the wait covers it. Give exactly one of `content`, "
        "`set` (overlay fields: replicas, model_version) or `replace` ({old, new}).",
        {
            "path": Param("str", doc="file in the repository (default with env: its overlay)"),
            "env": Param("env"),
            "content": Param("str"),
            "set": Param("mapping"),
            "replace": Param("mapping"),
            "message": Param("str", True),
            "trailers": Param("mapping", doc="extra commit trailers"),
            "author": Param("str", doc="the commit's author, `Name <email>` (default: the working copy's)"),
            "wait": Param("bool", doc="wait until env serves the change (default true with env)"),
        },
        example="commit_file: {env: dev, set: {replicas: 2}, message: Scale dev to 2}",
        do=doers.do_commit_file,
        title=lambda p: f"Committing: {p['message'].splitlines()[0]}",
    ),
    # -- doers: cluster ----------------------------------------------------------
    ActionSpec(
        "sync",
        "do",
        "Ask the engine to reconcile env now (like `gitops-lab sync`), then wait until it applied the head "
        "of the pushed branch and reports it healthy, and its Deployment rolled out. `wait_synced` is "
        "another name for it.",
        {"env": Param("env_or_all", True)},
        needs_cluster=True,
        example="sync: {env: all}",
        do=doers.do_sync,
        title=lambda p: f"Syncing {p['env']}",
        aliases=("wait_synced",),
    ),
    ActionSpec(
        "patch_live",
        "do",
        "Change a live object by hand (JSON merge patch), bypassing Git: simulates drift.",
        {
            "env": _ENV,
            "patch": Param("mapping", True),
            "kind": Param("str", doc="default Deployment"),
            "name": Param("str", doc="default model-server"),
            "api_version": Param("str", doc="default apps/v1"),
        },
        needs_cluster=True,
        example="patch_live: {env: prod, patch: {spec: {replicas: 4}}}",
        do=doers.do_patch_live,
        title=lambda p: f"Editing {p['env']}'s live {p.get('kind', 'Deployment')} by hand",
    ),
    ActionSpec(
        "observe",
        "do",
        "Do what an observation step asks the learner to look at, through the same code as the CLI, and "
        "record it as the CLI does: `gate-run` (gitops-lab gate run), `promote` (a promotion its gates must "
        "refuse), `history`, `status` or `verify` (the model server asked through the API server's proxy). "
        "For solutions of steps with an `observed` check.",
        {
            "command": Param("str", True, ("gate-run", "promote", "history", "status", "verify")),
            "env": Param("env"),
            "from": Param("env"),
            "to": Param("env"),
            "version": Param("version"),
            "gate": Param("str"),
        },
        example="observe: {command: gate-run, to: staging, version: v3}",
        do=doers.do_observe,
        title=lambda p: f"Looking, as the step asks: {checks.HOW[p['command']](p).strip('`')}",
    ),
    ActionSpec(
        "mark_live",
        "do",
        "Remember the generation of env's Deployment now, for a later drift_healed check.",
        {"env": _ENV},
        needs_cluster=True,
        example="mark_live: {env: prod}",
        do=doers.do_mark_live,
        title=lambda p: f"Remembering {p['env']}'s live Deployment",
    ),
    # -- assertions ---------------------------------------------------------------
    ActionSpec(
        "serves",
        "assert",
        "env's Deployment runs `version` on its pod template and has rolled out (read from the Kubernetes API).",
        {"env": _ENV, "version": Param("version", True), "hint": _HINT},
        needs_cluster=True,
        example="serves: {env: staging, version: v2}",
        check=checks.check_serves,
    ),
    ActionSpec(
        "synced_healthy",
        "assert",
        "The engine reports env synced to the pushed branch head and healthy.",
        {"env": Param("env_or_all", True), "hint": _HINT},
        needs_cluster=True,
        example="synced_healthy: {env: all}",
        check=checks.check_synced_healthy,
    ),
    ActionSpec(
        "live_matches_git",
        "assert",
        "env's live Deployment has the replicas and model version its overlay sets on the pushed branch, "
        "and has rolled out.",
        {"env": _ENV, "hint": _HINT},
        needs_cluster=True,
        example="live_matches_git: {env: prod}",
        check=checks.check_live_matches_git,
    ),
    ActionSpec(
        "replicas",
        "assert",
        "env's overlay on the pushed branch sets `count` replicas and, with a cluster, the live Deployment "
        "runs that many, ready.",
        {"env": _ENV, "count": Param("int", True), "hint": _HINT},
        example="replicas: {env: dev, count: 2}",
        check=checks.check_replicas,
    ),
    ActionSpec(
        "drift_healed",
        "assert",
        "Since mark_live, env's Deployment was changed and changed back: it was edited by hand and the "
        "engine healed it, so it matches Git again.",
        {"env": _ENV, "hint": _HINT},
        needs_cluster=True,
        example="drift_healed: {env: prod}",
        check=checks.check_drift_healed,
    ),
    ActionSpec(
        "history_contains",
        "assert",
        "Since the lab's start point, the pushed history of env (as `gitops-lab history` reads it from the "
        "overlay's own commits) has an entry with this action (promote, rollback, approve, manual for a "
        "plain commit, ...; a list: any of them), version and trailers (value prefixes). "
        "expect: absent inverts it.",
        {
            "env": _ENV,
            "action": Param("str_or_list", True),
            "version": Param("version"),
            "trailers": Param("mapping"),
            "expect": Param("str", choices=("present", "absent")),
            "hint": _HINT,
        },
        example="history_contains: {env: prod, action: rollback, version: v1}",
        check=checks.check_history_contains,
    ),
    ActionSpec(
        "approved",
        "assert",
        "env's last change of version since the lab's start point is a `gitops-lab promote` to `version`, "
        "and an approval let it through under the approval gate's own rule: recorded after env's previous "
        "change of version and before the promotion, by an allowed approver other than the promoter where "
        "gates.yaml separates duties. On failure it says how to get back on track.",
        {"env": _ENV, "version": Param("version", True), "hint": _HINT},
        example="approved: {env: prod, version: v2}",
        check=checks.check_approved,
    ),
    ActionSpec(
        "image_pinned",
        "assert",
        "Every container of env's live Deployment runs an image pinned by @sha256 digest, and the digest "
        "is one gitops-lab pins (versions.yaml) or one its pods report running: a made-up digest fails.",
        {"env": Param("env_or_all", True), "hint": _HINT},
        needs_cluster=True,
        example="image_pinned: {env: all}",
        check=checks.check_image_pinned,
    ),
    ActionSpec(
        "git_version",
        "assert",
        "env's overlay on the pushed branch names `version`.",
        {"env": _ENV, "version": Param("version", True), "hint": _HINT},
        example="git_version: {env: staging, version: v2}",
        check=checks.check_git_version,
    ),
    ActionSpec(
        "file_contains",
        "assert",
        "A file on the pushed branch contains `text` (expect: absent inverts it).",
        {
            "path": Param("str", True),
            "text": Param("str", True),
            "expect": Param("str", choices=("present", "absent")),
            "hint": _HINT,
        },
        example="file_contains: {path: overlays/dev/kustomization.yaml, text: 'count: 2'}",
        check=checks.check_file_contains,
    ),
    ActionSpec(
        "gate",
        "assert",
        "Run one validation gate now (as `gitops-lab gate run` does) and compare its verdict with `expect`.",
        {
            "name": Param("str", True),
            "from": Param("env"),
            "to": Param("env", True),
            "version": Param("version", True),
            "expect": Param("str", True, ("pass", "fail")),
            "hint": _HINT,
        },
        example="gate: {name: model-eval, to: staging, version: v3, expect: fail}",
        check=checks.check_gate,
    ),
    ActionSpec(
        "observed",
        "assert",
        "Since the step began, the learner ran this command (a list: any of them): `gate-run` "
        "(`gitops-lab gate run`, matched on `to` and `version`), `promote` refused by its gates (`to`, "
        "`version`), `history` (`env`), `status`, or `verify` of the cluster (`env`, `version`: the "
        "version that answered). A light check for steps that ask the learner to look.",
        {
            "command": Param("str_or_list", True),
            "env": Param("env"),
            "to": Param("env"),
            "version": Param("version"),
            "hint": _HINT,
        },
        example="observed: {command: history, env: prod}",
        check=checks.check_observed,
    ),
    # -- escape hatch -------------------------------------------------------------
    ActionSpec(
        "python",
        "any",
        "Call `function(ctx, **args)` from a module in the lab's own folder. In check it returns "
        "(passed, message) or a CheckResult; elsewhere its return value is ignored.",
        {"function": Param("str", True, doc="module:function"), "args": Param("mapping")},
        example="python: checks:learner_wrote_notes",
        do=hooks.call_python,
        title=lambda p: f"Running {p['function']}",
        check=hooks.check_python,
    ),
]

#: Every name a lab may use (aliases too) -> its action.
ACTIONS: dict[str, ActionSpec] = {name: spec for spec in _SPECS for name in (spec.name, *spec.aliases)}

PHASES = ("setup", "check", "solve", "reset")


def allowed_in(phase: str, spec: ActionSpec) -> bool:
    if spec.kind == "any":
        return True
    return (spec.kind == "assert") == (phase == "check")

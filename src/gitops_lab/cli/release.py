"""`gitops-lab release`: promote dev's version through staging to prod, verify each, roll back on failure;
`gitops-lab release status`: what the automation did and is doing."""

from __future__ import annotations

import click

from gitops_lab.cli.app import Application, environment_options, output_option, pass_app, repo_option


@click.group("release", invoke_without_command=True)
@click.option(
    "--watch", is_flag=True, help="Follow the lab repository: every push that changes dev's version starts a release."
)
@click.option(
    "--since",
    metavar="REF",
    help="With --watch: pushes after REF count. Default: those after the last change the automation handled.",
)
@click.option("--once", is_flag=True, help="With --watch: look once, release what is pending, and exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=3,
    show_default=True,
    metavar="SECONDS",
    help="With --watch: how often to fetch the remote.",
)
@environment_options(timeout_help="One deadline for each release: every wait and verification in it.")
@click.pass_context
@pass_app
def command(
    app: Application,
    ctx: click.Context,
    watch: bool,
    since: str | None,
    once: bool,
    interval: float,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Release dev's model version to staging and prod, verifying each, rolling back on failure.

    \b
    For each environment in turn:
      dev      wait until it serves the version, then `gitops-lab verify`
      staging  promote (with its gates), wait, verify
      prod     promote (gates and approval), wait, verify

    When a verification fails, the release reverts the commit that brought the
    version into that environment (trailers: Rollback-Reason and one Verify-<Check>
    verdict per check), pushes, waits until the previous version serves again,
    and exits 4 naming the failed check; `gitops-lab history` shows it. Without an
    approval for prod it stops before prod (exit 4) and continues when run again.

    --watch makes it GitOps-triggered: it polls the lab repository and starts a
    release whenever a push changes dev's version (a learner's `git push`), with
    no command typed; restarted, it picks up pushes made while it was stopped.
    Ctrl-C stops it.

    Only one release acts on a lab at a time: a second one (typed or watching)
    refuses and names the first. A release stopped mid-way (killed, the terminal
    closed) is finished by the next one; `gitops-lab release status` shows it.

    \b
    Examples:
      gitops-lab release
      gitops-lab release --watch
      gitops-lab release --watch --once --since gitops-lab/seed
      gitops-lab release status
    """
    if ctx.invoked_subcommand is not None:
        return
    from gitops_lab.errors import GateFailed, UsageError
    from gitops_lab.deadline import command_deadline
    from gitops_lab.workflows.environment import open_environment
    from gitops_lab.workflows.release import cluster_deployment, release_once
    import contextlib

    from gitops_lab.workflows.release_agent import host_claim, installed
    from gitops_lab.workflows.release_lock import release_lock

    if (once or since) and not watch:
        raise UsageError("--once and --since go with --watch", fix="add --watch, or drop them")
    path = app.repo_path(repo)
    saved = app.state()
    if saved is None or not saved.engine:
        raise UsageError(
            "a release needs the environments `gitops-lab up` set up, and none is known",
            fix="run `gitops-lab up` first (or pass --name of the lab you set up)",
        )
    reporter = app.reporter(output)
    what = "gitops-lab release" + (" --watch" + (" --once" if once else "") if watch else "")
    if watch:
        with release_lock(app.name, what, reporter) as lock:
            lab = open_environment(saved, kubeconfig, context, path)
            if lab is not None and installed(lab.kube):
                raise UsageError(
                    "the release automation already runs in the cluster (`gitops-lab up --release-automation`): "
                    "a watch here would release the same pushes twice",
                    fix="push and let it act; `gitops-lab release status` shows what it does",
                )
            deployment = cluster_deployment(lab)
            _watch(app, reporter, path, deployment, timeout, interval, since, once, output, lock)
        return

    # Every git and API call of the release takes what is left of the deadline. Once the cluster is open
    # (under the host's lock), the release holds the in-cluster automation's Lease too, where it is installed.
    with contextlib.ExitStack() as claims, command_deadline(timeout) as deadline:

        def open_deployment():
            lab = open_environment(saved, kubeconfig, context, path)
            claims.enter_context(host_claim(lab.kube if lab is not None else None, what, reporter))
            return cluster_deployment(lab)

        result = release_once(app.name, reporter, path, open_deployment, deadline, what)
    app.emit(output, result.to_dict(), format_release(result))
    if result.awaiting_approval:
        raise GateFailed(
            f"the release of {result.version} stopped before prod: it needs an approval", fix=result.stages[-1].summary
        )


def _watch(
    app: Application,
    reporter,
    path,
    deployment,
    timeout: float,
    interval: float,
    since: str | None,
    once: bool,
    output: str,
    lock,
) -> None:
    import threading

    from gitops_lab import signals
    from gitops_lab.adapters.repo.git import Git
    from gitops_lab.errors import Interrupted
    from gitops_lab.workflows.release import watch, watch_once, watch_start

    git = Git(path)
    start = watch_start(path, since)

    def show(done) -> None:
        if done.error is not None:
            app.emit(
                output,
                {"head": done.head, "trigger": done.trigger, "error": done.error.one_line()},
                f"release of {done.trigger[:7]}: {done.error.one_line()}",
            )
        elif done.result is not None:
            app.emit(output, done.result.to_dict(), format_release(done.result))
        else:
            reporter.info(f"watching {git.remote_url() or path}: nothing to release at {done.head[:7]}")

    if once:
        done = watch_once(reporter, path, deployment, timeout, start, lock)
        show(done)
        if done.error is not None:
            raise done.error
        return
    after = f"after {start[:7]}" if start else "the automation has released nothing yet: all pushes"
    reporter.info(
        f"watching {git.remote_url() or path} every {interval:g}s for pushes that change dev's version "
        f"({after}); Ctrl-C stops"
    )
    try:
        watch(reporter, path, deployment, timeout, interval, start, threading.Event(), show, lock)
    except KeyboardInterrupt as stop:
        acting = lock.holder.acting
        if acting is not None:
            # Stopped mid-release (Ctrl-C, SIGTERM, the terminal closed): not a clean end. The lock's
            # record keeps what it was doing, so the next release or watch finishes it.
            raise Interrupted(
                f"the watch was stopped by {signals.signal_name(stop)} during {acting.describe()}",
                fix="`gitops-lab release` (or a new `gitops-lab release --watch`) finishes it; "
                "`gitops-lab release status` shows it",
                exit_code=signals.exit_code(stop),
            ) from stop
        # Between releases, stopping is how a watch ends; the next watch picks up from Git.
        reporter.info("stopped watching")


def format_release(result) -> str:
    from gitops_lab.cli.output import format_table

    rows = [(s.environment, s.outcome, (s.commit or "")[:7], s.summary) for s in result.stages]
    state = "released to every environment" if result.complete else "not complete"
    return f"release of {result.version} (trigger {result.trigger[:7]}): {state}\n" + format_table(
        ("ENV", "OUTCOME", "COMMIT", "SUMMARY"), rows
    )


@command.command("status")
@output_option
@repo_option
@pass_app
def status_command(app: Application, output: str, repo: str | None) -> None:
    """What the release automation did and is doing.

    From Git (the remote, fetched): its last promotions and rollbacks, newest
    first, with the reason and the verification evidence of each (trailers).
    From the lab's state folder: who holds the release lock now, and a release
    that was stopped before it ended (with the command that finishes it).

    \b
    Examples:
      gitops-lab release status
      gitops-lab release status --output json
    """
    from gitops_lab.workflows.release import release_status

    data = release_status(app.repo_path(repo), app.name)
    data["automation"] = _automation_status(app)
    app.emit(output, data, format_status(data))


def _automation_status(app: Application) -> dict | None:
    """The in-cluster automation's pod, Lease and last passes; None without a cluster or without it;
    ``{"error": ...}`` when the cluster cannot be asked (the Git half of the status still shows)."""
    from gitops_lab.errors import GitOpsLabError
    from gitops_lab.workflows.environment import open_if_set_up
    from gitops_lab.workflows.release_agent import agent_status

    try:
        lab = open_if_set_up(app.state())
        return None if lab is None else agent_status(lab.kube)
    except GitOpsLabError as exc:
        return {"error": exc.one_line()}


def format_status(data: dict) -> str:
    from gitops_lab.cli.output import format_table

    lock = data["lock"]
    if lock is None:
        lines = ["release lock: free (no release has run here)"]
    else:
        who = f"pid {lock['pid']} on {lock['host']}, since {lock['since']} ({lock['command']})"
        doing = lock["acting"]
        if lock["held"]:
            lines = [f"release lock: held by {who}" + (f", {doing['step']} of {doing['version']}" if doing else "")]
        else:
            lines = [f"release lock: free (last held by {who}" + (", which never let go)" if lock["stale"] else ")")]
    left = data["interrupted"]
    if left:
        lines.append(
            f"interrupted: the release of {left['version']} (trigger {left['trigger'][:7]}) stopped while "
            f"{left['step']}; {left['fix']}"
        )
    rows = [
        (
            a["commit"][:7],
            a["date"][:19].replace("T", " "),  # as `history` shows it
            a["action"] or "",
            a["environment"] or "",
            f"{a['previous']} -> {a['version']}" if a["previous"] else a["version"] or "",
            a["trigger"][:7],
            a["reason"]
            or "; ".join(f"{k.removeprefix('Verify-').lower()} {_verdict(v)}" for k, v in a["evidence"].items()),
        )
        for a in data["actions"]
    ]
    lines += format_automation(data.get("automation"))
    if not rows:
        return "\n".join([*lines, "the automation has made no promotion or rollback yet"])
    table = format_table(("COMMIT", "DATE", "ACTION", "ENV", "VERSION", "TRIGGER", "REASON OR EVIDENCE"), rows)
    return "\n".join([*lines, table])


def format_automation(automation: dict | None) -> list[str]:
    """The in-cluster automation in a few lines: its pod, what it is doing, its last passes."""
    if automation is None:
        return ["in-cluster automation: not installed (`gitops-lab up --release-automation` installs it)"]
    if "error" in automation:
        return [f"in-cluster automation: cannot ask the cluster: {automation['error']}"]
    pods = automation["pods"]
    pod = (
        ", ".join(f"{p['name']} {p['phase']}{' ready' if p['ready'] else ''}, {p['restarts']} restart(s)" for p in pods)
        or "no pod yet (the engine syncs automation/ from the lab repository)"
    )
    lease, acting = automation["lease"], automation["lease"]["acting"]
    doing = (
        f"{lease['holder']} holds the Lease" + (f", {acting['step']} of {acting['version']}" if acting else "")
        if lease["holder"]
        else "between releases"
        + (f" (interrupted: {acting['step']} of {acting['version']}, the next pass finishes it)" if acting else "")
    )
    lines = [f"in-cluster automation: {pod}; {automation.get('state') or 'starting'}, {doing}"]
    for one in automation["passes"][:3]:
        what = one.get("error") or (
            "released to every environment" if (one.get("result") or {}).get("complete") else "release not complete"
        )
        lines.append(f"  {one['time']} trigger {(one.get('trigger') or '-')[:7]}: {what}")
    return lines


def _verdict(trailer: str) -> str:
    """``pass`` of ``pass (live accuracy ...)``, ``skipped`` of ``skipped: ...``."""
    return trailer.split(" ", 1)[0].rstrip(":")

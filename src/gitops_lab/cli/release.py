"""`gitops-lab release`: promote dev's version through staging to prod, verify each, roll back on failure."""

from __future__ import annotations

import click

from gitops_lab.cli.app import Application, environment_options, pass_app


@click.command("release")
@click.option(
    "--watch", is_flag=True, help="Follow the lab repository: every push that changes dev's version starts a release."
)
@click.option(
    "--since",
    metavar="REF",
    help="With --watch: pushes after REF count. Default: the remote's head when the watch starts.",
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
@pass_app
def command(
    app: Application,
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
    no command typed. Ctrl-C stops it.

    \b
    Examples:
      gitops-lab release
      gitops-lab release --watch
      gitops-lab release --watch --once --since gitops-lab/seed
    """
    from gitops_lab.errors import GateFailed, UsageError
    from gitops_lab.workflows.environment import open_environment
    from gitops_lab.workflows.release import cluster_deployment, run_release
    from gitops_lab.kube.deadline import Deadline

    if (once or since) and not watch:
        raise UsageError("--once and --since go with --watch", fix="add --watch, or drop them")
    path = app.repo_path(repo)
    saved = app.state()
    if saved is None or not saved.engine:
        raise UsageError(
            "a release needs the environments `gitops-lab up` set up, and none is known",
            fix="run `gitops-lab up` first (or pass --name of the lab you set up)",
        )
    deployment = cluster_deployment(open_environment(saved, kubeconfig, context, path))
    reporter = app.reporter(output)
    if watch:
        _watch(app, reporter, path, deployment, timeout, interval, since, once, output)
        return
    result = run_release(reporter, path, deployment, Deadline(timeout))
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
) -> None:
    import threading

    from gitops_lab.adapters.repo.git import Git
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
        done = watch_once(reporter, path, deployment, timeout, start)
        show(done)
        if done.error is not None:
            raise done.error
        return
    reporter.info(
        f"watching {git.remote_url() or path} every {interval:g}s for pushes that change dev's version "
        f"(after {start[:7]}); Ctrl-C stops"
    )
    try:
        watch(reporter, path, deployment, timeout, interval, start, threading.Event(), show)
    except KeyboardInterrupt:
        # Ctrl-C is how a watch ends; Git holds every release's state, so the next watch picks up.
        reporter.info("stopped watching")


def format_release(result) -> str:
    from gitops_lab.cli.output import format_table

    rows = [(s.environment, s.outcome, (s.commit or "")[:7], s.summary) for s in result.stages]
    state = "released to every environment" if result.complete else "not complete"
    return f"release of {result.version} (trigger {result.trigger[:7]}): {state}\n" + format_table(
        ("ENV", "OUTCOME", "COMMIT", "SUMMARY"), rows
    )

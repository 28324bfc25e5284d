"""`gitops-lab verify`: check what an environment really serves, after a deploy."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.cli.app import Application, environment_options, pass_app

#: The API key `verify --url` sends on /predict; without --url it comes from the cluster's Secret.
URL_API_KEY_ENV = "GITOPS_LAB_MODEL_API_KEY"


@click.command("verify")
@click.option("--env", required=True, type=click.Choice(ENVIRONMENTS), help="Environment to verify.")
@click.option(
    "--version", metavar="VERSION", help="Version it should serve. Default: the one its overlay names, as pushed."
)
@click.option(
    "--url",
    metavar="URL",
    help="Verify the model server at URL instead of the cluster's; the pods check is skipped, and what "
    "to expect is read from the checked-out commit (HEAD) instead of the pushed branch. /predict carries "
    "$GITOPS_LAB_MODEL_API_KEY when it is set (the cluster's own key comes from its Secret model-api-key).",
)
@environment_options(timeout_help="One deadline for the whole verification.")
@pass_app
def command(
    app: Application,
    env: str,
    version: str | None,
    url: str | None,
    timeout: float,
    kubeconfig: str | None,
    context: str | None,
    repo: str | None,
    output: str,
) -> None:
    """Verify what an environment serves: version, pods, live accuracy, errors, latency.

    Reaches the model server through the Kubernetes API server's proxy (no
    kubectl, no port-forward) and checks:

    \b
      version      every ready pod's /version names the version Git says
      pods         every pod ready, without restarts, labelled with the version
      accuracy     labelled rows sent to /predict (held-out rows; in prod, its own
                   traffic) score within tolerance of the accuracy the artifact records
      error-rate   failed /predict requests, from /metrics, under a short load
      latency-p95  the 95th percentile of /predict, from /metrics' histogram
      input-drift  the inputs the pods received against the training reference (PSI
                   per feature, from /metrics' input histograms); warns by default

    Thresholds live in gates.yaml's `verification` section. Exits 4 when any
    check fails. When the environment's namespace holds the Secret
    model-api-key, /predict requests carry its API_KEY (header X-API-Key).

    \b
    Examples:
      gitops-lab verify --env staging
      gitops-lab verify --env prod --output json
      gitops-lab verify --env dev --url http://127.0.0.1:8080   # a server you reached yourself
    """
    from gitops_lab.deadline import command_deadline
    from gitops_lab.workflows.verify import expected_from_git, require_passed, verify

    path = app.repo_path(repo)
    with command_deadline(timeout) as deadline:  # the fetch, every API call and the checks share --timeout
        expected = expected_from_git(path, env, version, pushed=url is None)
        target = _target(app, path, env, url, kubeconfig, context)
        report = verify(target, expected.version, expected.artifact, expected.settings, deadline, app.reporter(output))
    if url is None:
        from gitops_lab import observations

        observations.verified(app.name, report)
    app.emit(output, report.to_dict(), format_report(report))
    require_passed(report)


def _target(app: Application, path: Path, env: str, url: str | None, kubeconfig: str | None, context: str | None):
    from gitops_lab.adapters.repo.layout import RepoLayout
    from gitops_lab.kube.client import connect
    from gitops_lab.workflows.verify import kube_target, url_target

    if url:
        import os

        return url_target(env, url, os.environ.get(URL_API_KEY_ENV) or None)
    kube = connect(*app.cluster_access(kubeconfig, context))
    return kube_target(kube, env, RepoLayout(path).namespace(env))


def format_report(report) -> str:
    from gitops_lab.cli.output import verdict_table

    verdict = "passes" if report.passed else "FAILS"
    return f"{report.environment} serving {report.version} {verdict} verification ({report.where})\n" + verdict_table(
        report.checks, "CHECK"
    )

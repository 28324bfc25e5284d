"""The `gitops-lab` command group. Subcommands live one per module."""

from __future__ import annotations

import click

from gitops_lab import DEFAULT_NAME, __version__
from gitops_lab.cli.group import GitOpsLabGroup


# Every subcommand: its module, the attribute holding it, and its one-line summary for `gitops-lab --help`.
# The group imports a command's module only when that command runs or prints its own --help, so the
# top-level --help loads none of them (tests/unit/cli/test_cli_startup.py checks each summary against its command).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "approve": ("approve", "command", "Approve promoting a model version to an environment, as one pushed commit."),
    "class": ("classroom", "group", "Teach a class on one shared cluster: a tenant per learner, instructor commands."),
    "credentials": (
        "credentials",
        "command",
        "Print the learner's logins: the lab's Git server (kind), its forge (Gitea) and Argo CD's UI.",
    ),
    "design": ("design", "command", "The pipeline design document (docs/pipeline-design.md in the lab repository)."),
    "doctor": ("doctor", "command", "Check Docker, resources, cgroups, inotify limits, ports, kind, CPU and disk."),
    "down": ("down", "command", "Delete the kind cluster and the local state, after backing up the repository."),
    "gate": (
        "gate",
        "command",
        "Validation gates: data quality, model evaluation, policy, secret scan, approval, and your own.",
    ),
    "history": ("history", "command", "Show every change of an environment's model version, newest first."),
    "images": ("images", "command", "List, pull and load the images the lab runs (for slow or offline classrooms)."),
    "lab": ("lab", "group", "Hands-on labs: GitOps for ML, one checked step at a time."),
    "models": (
        "models",
        "command",
        "Sign model artifacts with your own key, trusted by the policy gate; see docs/supply-chain.md.",
    ),
    "promote": ("promote", "command", "Promote a model version to an environment, as one pushed commit."),
    "release": (
        "release",
        "command",
        "Release dev's model version to staging and prod, verifying each, rolling back on failure.",
    ),
    "repo": ("repo", "command", "Create and manage the lab's Git working copy."),
    "rollback": ("rollback", "command", "Roll an environment back with a new commit; history is never rewritten."),
    "secrets": ("secrets", "command", "Secrets kept encrypted in Git with SOPS and age; see docs/secrets.md."),
    "status": (
        "status",
        "command",
        "Show one row per environment: engine, commit, sync and health, model version, replicas.",
    ),
    "sync": (
        "sync",
        "command",
        "Reconcile environments now: the engine applies the pushed branch head, undoing hand edits.",
    ),
    "up": ("up", "command", "Set up the lab: cluster, engine, Git repository, and dev, staging and prod synced."),
    "verify": (
        "verify",
        "command",
        "Verify what an environment serves: version, pods, live accuracy, errors, latency.",
    ),
}


@click.group(
    cls=GitOpsLabGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="gitops-lab")
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and extra detail on errors.")
@click.option(
    "--name",
    default=DEFAULT_NAME,
    show_default=True,
    envvar="GITOPS_LAB_NAME",
    help="Name of the lab environment (its kind cluster and saved state): lowercase letters, digits and '-'.",
)
@click.pass_context
def main(ctx: click.Context, verbose: bool, name: str) -> None:
    """GitOps labs for CI/CD of machine-learning models.

    Seeds a Git repository with dev, staging and prod overlays of a model
    server, and promotes and rolls back model versions through Git.

    \b
    Examples:
      gitops-lab repo init ./lab-repo --remote http://localhost:8180/lab.git
      gitops-lab promote --from dev --to staging
      gitops-lab rollback --env prod
      gitops-lab history --env prod --output json
    """
    # Start-up: what a subcommand needs; `gitops-lab --help` is answered before this callback runs.
    from gitops_lab.adapters.repo.git import authenticated
    from gitops_lab.cli.app import Application
    from gitops_lab.state import check_name

    ctx.obj = Application(verbose=verbose, name=check_name(name))

    ctx.with_resource(authenticated(ctx.obj.git_auth()))

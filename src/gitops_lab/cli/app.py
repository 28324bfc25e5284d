"""The application object every command gets: settings, output and error exits.

Commands stay thin: parse options, call a workflow, print the result. Only
this layer turns an error into a message and an exit code.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gitops_lab.errors import GitOpsLabError, UsageError
from gitops_lab.reporter import Reporter, reporter_for
from gitops_lab.state import DEFAULT_NAME, EnvironmentState, load_state_or_none

if TYPE_CHECKING:
    from gitops_lab.adapters.repo.git import GitAuth

OUTPUT_FORMATS = ("text", "json")


@dataclass
class Application:
    verbose: bool = False
    name: str = DEFAULT_NAME

    def reporter(self, output: str = "text") -> Reporter:
        return reporter_for(output)

    def state(self) -> EnvironmentState | None:
        return load_state_or_none(self.name)

    def cluster_access(self, kubeconfig: str | None, context: str | None) -> tuple[str | None, str | None]:
        """--kubeconfig and --context, else what `up` saved for this environment (else None: $KUBECONFIG)."""
        if kubeconfig:
            return kubeconfig, context
        saved = self.state()
        if saved is None or not saved.kubeconfig:
            return None, context
        return saved.kubeconfig, context or saved.context

    def git_auth(self) -> GitAuth | None:
        """The credentials of this command's git calls to http(s) remotes.

        $GITOPS_LAB_GIT_USERNAME/PASSWORD win; else, on kind, the learner's
        credentials that `up` saved. They reach git through an extra header
        (see adapters/repo/git.py), never a URL, .git/config or the process
        environment.
        """
        from gitops_lab.adapters.gitserver.incluster import saved_credentials
        from gitops_lab.adapters.repo.git import GitAuth

        given = GitAuth.from_environ()
        if given is not None:
            return given
        saved = saved_credentials(self.name)
        return saved.writer if saved else None

    def repo_path(self, explicit: str | None) -> Path:
        """The working copy: --repo, else $GITOPS_LAB_REPO, else the saved state, else cwd."""
        chosen = explicit or os.environ.get("GITOPS_LAB_REPO")
        if not chosen:
            saved = self.state()
            chosen = saved.repo_path if saved and saved.repo_path else None
        if not chosen:
            cwd = Path.cwd()
            if (cwd / "overlays").is_dir():
                return cwd
            raise UsageError(
                "no lab working copy is known",
                fix="pass --repo PATH, or create one with `gitops-lab repo init PATH`",
            )
        return Path(chosen).expanduser().resolve()

    def emit(self, output: str, data: Any, text: str) -> None:
        """Print a result on stdout: JSON for scripts, ``text`` for people."""
        if output == "json":
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            click.echo(text)


pass_app = click.make_pass_decorator(Application, ensure=True)

output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(OUTPUT_FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for scripts (progress events go to stderr as JSON lines).",
)
repo_option = click.option(
    "--repo",
    "repo",
    metavar="PATH",
    envvar="GITOPS_LAB_REPO",
    help="Lab working copy. Default: the one saved by `up`/`repo init`, else the current folder.",
)


class GitOpsLabGroup(click.Group):
    """A group that turns every error into one line on stderr and an exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from gitops_lab.signals import sigterm_like_sigint

        kwargs["standalone_mode"] = False
        try:
            with sigterm_like_sigint():
                return super().main(*args, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.exceptions.NoArgsIsHelpError as error:  # a bare group: its help, as asked
            click.echo(error.ctx.get_help())
            sys.exit(0)
        except click.ClickException as error:
            ctx = getattr(error, "ctx", None)
            where = f"`{ctx.command_path} --help`" if ctx else "`gitops-lab --help`"
            click.echo(f"error: {error.format_message().rstrip('.')}; see {where}", err=True)
            sys.exit(error.exit_code)
        except click.exceptions.Abort as error:
            if isinstance(error.__context__, KeyboardInterrupt):
                _exit_interrupted(error.__context__)
            click.echo("error: aborted", err=True)
            sys.exit(1)
        except KeyboardInterrupt as stop:
            _exit_interrupted(stop)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GitOpsLabError as error:
            app = ctx.find_object(Application)
            if app and app.verbose:
                raise
            click.echo(f"error: {error.one_line()}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt as stop:
            _exit_interrupted(stop)


def _exit_interrupted(stop: KeyboardInterrupt) -> None:
    """SIGINT or SIGTERM outside a Git write (which says more itself): one line, exit 130 or 143."""
    from gitops_lab import signals

    click.echo(f"error: interrupted by {signals.signal_name(stop)}; re-run the same command to finish", err=True)
    sys.exit(signals.exit_code(stop))


TIMEOUT_HELP = "One deadline for everything the command waits for: the Git remote, the engine, the rollout."


def timeout_option(command=None, *, default: float = 300, help: str = TIMEOUT_HELP):
    """--timeout SECONDS, the one deadline of a command: ``@timeout_option`` or
    ``@timeout_option(default=..., help=...)``."""
    option = click.option(
        "--timeout", type=click.FloatRange(min=1), default=default, show_default=True, metavar="SECONDS", help=help
    )
    return option(command) if command is not None else option


kubeconfig_option = click.option(
    "--kubeconfig",
    metavar="FILE",
    help="Kubeconfig to use. Default: the one saved by `up`, else $KUBECONFIG.",
)
context_option = click.option("--context", metavar="NAME", help="Kubeconfig context to use.")


def environment_options(command=None, *, timeout_help: str | None = None):
    """--timeout, --kubeconfig, --context, --repo and --output: the options of
    every command that changes an environment and waits for it.

    Used bare (``@environment_options``) or with its own --timeout wording
    (``@environment_options(timeout_help="...")``).
    """
    timeout = timeout_option(help=timeout_help or TIMEOUT_HELP)

    def decorate(target):
        for option in (output_option, repo_option, context_option, kubeconfig_option, timeout):
            target = option(target)
        return target

    return decorate(command) if command is not None else decorate

"""The application object every command gets (settings, output) and the options commands share.

Commands stay thin: parse options, call a workflow, print the result. Only
this layer turns an error into a message and an exit code (group.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gitops_lab.errors import GitOpsLabError, UsageError
from gitops_lab.reporter import Reporter, reporter_for
from gitops_lab import DEFAULT_NAME
from gitops_lab.state import EnvironmentState, load_state_or_none

if TYPE_CHECKING:
    from gitops_lab.adapters.repo.git import GitAuth

OUTPUT_FORMATS = ("text", "json")


@dataclass
class Application:
    verbose: bool = False
    name: str = DEFAULT_NAME
    #: The command's --output, once parsed: an error is then also a JSON object on stdout.
    output: str = "text"
    #: True once the command printed its result on stdout (``emit``).
    emitted: bool = False

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
        credentials that `up` saved; else the learner's forge account, when
        `repo init --forge-url` saved a forge. They reach git through an extra header
        (see adapters/repo/git.py), never a URL, .git/config or the process
        environment.
        """
        from gitops_lab.adapters.gitserver.credentials import saved_credentials
        from gitops_lab.adapters.repo.git import GitAuth

        given = GitAuth.from_environ()
        if given is not None:
            return given
        saved = saved_credentials(self.name)
        return saved.writer if saved else self._forge_auth()

    def _forge_auth(self) -> GitAuth | None:
        """The learner's account of the forge `repo init --forge-url` saved, for its Git over HTTP."""
        from gitops_lab.adapters.forge.seed import read_accounts
        from gitops_lab.adapters.repo.git import GitAuth

        try:
            saved = self.state()
            if saved is None or not saved.forge_credentials:
                return None
            learner = read_accounts(Path(saved.forge_credentials)).learner
        except GitOpsLabError:
            return None  # a command that needs the forge names the problem itself; the others need no auth
        return GitAuth(learner.username, learner.password)

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
        self.emitted = True
        if output == "json":
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            click.echo(text)


pass_app = click.make_pass_decorator(Application, ensure=True)


class PlainText(click.ParamType):
    """Free text that goes into a Git commit: printable, with newlines and tabs only where ``lines`` allows them.

    A control character in a commit message (an escape sequence, a record
    separator) would repaint the terminal of whoever reads `git log` or
    `history` later, so it is refused before anything is written.
    """

    name = "text"

    def __init__(self, lines: bool = False):
        self.allowed = "\n\t" if lines else ""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        bad = next((c for c in text if (not c.isprintable() and c not in self.allowed and c != " ")), None)
        if bad is not None:
            shown = "a newline" if bad == "\n" else f"the control character U+{ord(bad):04X}"
            self.fail(f"{text[:40]!r} holds {shown}; write plain text", param, ctx)
        return text


def _remember_output(ctx: click.Context, param: click.Parameter, value: str) -> str:
    ctx.ensure_object(Application).output = value
    return value


output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(OUTPUT_FORMATS),
    default="text",
    show_default=True,
    callback=_remember_output,
    help="text for people, json for scripts (progress events go to stderr as JSON lines).",
)
repo_option = click.option(
    "--repo",
    "repo",
    metavar="PATH",
    envvar="GITOPS_LAB_REPO",
    help="Lab working copy. Default: the one saved by `up`/`repo init`, else the current folder.",
)


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


def environment_options(command=None, *, timeout_help: str | None = None, timeout_default: float = 300):
    """--timeout, --kubeconfig, --context, --repo and --output: the options of
    every command that changes an environment and waits for it.

    Used bare (``@environment_options``) or with its own --timeout wording and default
    (``@environment_options(timeout_help="...", timeout_default=...)``).
    """
    timeout = timeout_option(default=timeout_default, help=timeout_help or TIMEOUT_HELP)

    def decorate(target):
        for option in (output_option, repo_option, context_option, kubeconfig_option, timeout):
            target = option(target)
        return target

    return decorate(command) if command is not None else decorate

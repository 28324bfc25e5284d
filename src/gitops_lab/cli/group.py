"""The `gitops-lab` group's behaviour: subcommands loaded on first use, every error one line and an exit code.

Kept apart from app.py, and light on imports, because `gitops-lab --help` loads this module and
nothing a command needs (the Application, the state folder, JSON, paths).
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import TYPE_CHECKING, Any

import click

from gitops_lab.errors import GitOpsLabError

if TYPE_CHECKING:
    from gitops_lab.cli.app import Application


class GitOpsLabGroup(click.Group):
    """A group that turns every error into one line on stderr and an exit code.

    ``lazy`` names subcommands that stay unimported until used: name -> (module in this package, its
    attribute, the one-line summary the group's --help shows), so `gitops-lab --help` loads no command.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attribute, _ = self.lazy[cmd_name]
            # Start-up: a command's module (and what it imports) loads only when that command is asked for.
            loaded = importlib.import_module(f"{__package__}.{module}")
            self.add_command(getattr(loaded, attribute), cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and args[0] not in self.lazy:
            # A name no command has: load them all (only on this error path) so Click suggests among every one.
            for name in self.lazy:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands' list from their summaries, loading none; Click shortens each as for a loaded one."""
        shown = {name: command for name, command in self.commands.items() if not command.hidden}
        for name, (_, _, summary) in self.lazy.items():
            shown.setdefault(name, click.Command(name, help=summary))
        if not shown:
            return
        limit = formatter.width - 6 - max(map(len, shown))
        with formatter.section("Commands"):
            formatter.write_dl([(name, shown[name].get_short_help_str(limit)) for name in sorted(shown)])

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
            # Start-up: only an error needs the application object.
            from gitops_lab.cli.app import Application

            ctx = getattr(error, "ctx", None)
            where = f"`{ctx.command_path} --help`" if ctx else "`gitops-lab --help`"
            message, fix = error.format_message().rstrip("."), f"see {where}"
            click.echo(f"error: {message}; {fix}", err=True)
            app = ctx.find_object(Application) if ctx else None
            if (app is None or app.output != "json") and _asks_for_json(
                kwargs.get("args") or (args[0] if args else sys.argv[1:])
            ):
                app = Application(output="json")  # the arguments did not parse, but the caller wants JSON
            _json_error(app, "usage-error", error.exit_code, message, fix)
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
            # Start-up: only an error needs the application object.
            from gitops_lab.cli.app import Application

            app = ctx.find_object(Application)
            if app and app.verbose:
                raise
            click.echo(f"error: {error.one_line()}", err=True)
            _json_error(app, error_code(error), error.exit_code, error.message, error.fix)
            sys.exit(error.exit_code)
        except KeyboardInterrupt as stop:
            _exit_interrupted(stop)


def _asks_for_json(argv: Any) -> bool:
    """Whether raw arguments ask for --output json (for errors found before the options were parsed)."""
    argv = [str(a) for a in argv or []]
    pairs = zip(argv, argv[1:])
    return any(a in ("--output=json", "-ojson") for a in argv) or any(
        a in ("--output", "-o") and b == "json" for a, b in pairs
    )


def error_code(error: GitOpsLabError) -> str:
    """The error's kind for scripts, from its class: UsageError -> usage-error, WaitTimeout -> wait-timeout."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(error).__name__).lower()


def _json_error(app: Application | None, code: str, exit_code: int, message: str, fix: str | None) -> None:
    """With --output json, the error as one JSON object on stdout, so a script parses stdout whatever happens.

    Not when the command already printed its result (``gate run`` prints every
    verdict, then fails): stdout stays one JSON document.
    """
    if app is None or app.output != "json" or app.emitted:
        return
    import json  # only a JSON error needs it, and --help does not

    error = {"code": code, "exit_code": exit_code, "message": " ".join(message.split()), "fix": fix}
    click.echo(json.dumps({"error": error}, sort_keys=True))


def _exit_interrupted(stop: KeyboardInterrupt) -> None:
    """SIGINT or SIGTERM outside a Git write (which says more itself): one line, exit 130 or 143."""
    from gitops_lab import signals

    click.echo(f"error: interrupted by {signals.signal_name(stop)}; re-run the same command to finish", err=True)
    sys.exit(signals.exit_code(stop))

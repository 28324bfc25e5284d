"""`gitops-lab --help` stays fast: no command's --help imports the Kubernetes client, docker or YAML,
the top-level one not the Git core, the gates' code, subprocess or any command's module either,
and a command's --help loads that command's module alone."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from gitops_lab.cli import main
from gitops_lab.cli.main import COMMANDS

# Not even a command's --help, which runs the group's callback (it looks up the saved Git credentials).
HEAVY = ("kubernetes", "docker", "urllib3", "tenacity", "yaml")
# What only running a command needs: the Git core, the gates (their packages load names on first use), the
# application object and the state folder (with JSON and paths). A subcommand's --help still runs the
# group's callback, which sets up Git credentials.
NOT_FOR_TOP_HELP = (
    "subprocess",
    "tempfile",
    "json",
    "pathlib",
    "gitops_lab.cli.app",
    "gitops_lab.state",
    "gitops_lab.reporter",
    "gitops_lab.adapters.repo.git",
    "gitops_lab.adapters.repo.promotion",
    "gitops_lab.gates.runner",
)
COMMAND_MODULES = {f"gitops_lab.cli.{module}" for module, _, _ in COMMANDS.values()}
# What a command's module may bring along from its neighbours (options and tables it shares).
ALONG = {"class": {"gitops_lab.cli.lab"}, "verify": {"gitops_lab.cli.gate"}}


def _commands(group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


def _command(path):
    cmd = main
    for name in path:
        cmd = cmd.get_command(click.Context(cmd), name)
    return cmd


def _help_in_a_new_process(args) -> tuple[str, list[str]]:
    """What `gitops-lab ARGS --help` prints in an 80-column terminal, run in a fresh interpreter, and the
    modules it imported."""
    code = (
        "import sys\n"
        "from gitops_lab.cli import main\n"
        f"try:\n    main([*{list(args)!r}, '--help'], prog_name='gitops-lab')\n"
        "except SystemExit:\n    pass\n"
        "print('MODULES=' + ','.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    printed, modules = proc.stdout.rsplit("MODULES=", 1)
    return printed, modules.strip().split(",")


@pytest.mark.parametrize("args", [()] + [c for c in _commands(main)], ids=lambda a: " ".join(a) or "gitops-lab")
def test_help_imports_no_heavy_module(args):
    printed, modules = _help_in_a_new_process(args)
    heavy_roots = HEAVY if args else HEAVY + NOT_FOR_TOP_HELP
    heavy = sorted(m for m in modules if m.split(".")[0] in heavy_roots or m in heavy_roots)
    assert heavy == [], f"--help imported {heavy}"
    allowed = {f"gitops_lab.cli.{COMMANDS[args[0]][0]}", *ALONG.get(args[0], ())} if args else set()
    loaded = sorted(m for m in modules if m in COMMAND_MODULES and m not in allowed)
    assert loaded == [], f"--help of {args or 'the group'} imported other commands' modules"
    assert "Usage:" in printed


def test_the_command_list_is_the_commands_own_summaries(monkeypatch):
    """The top-level --help lists each command from its table entry without loading it: the same
    rows Click prints once every command is loaded, so an edited docstring must be copied here."""
    lazy_help, _ = _help_in_a_new_process(())
    for name, (_, _, summary) in COMMANDS.items():
        assert _command((name,)).get_short_help_str(limit=10**4) == summary, f"COMMANDS[{name!r}] is stale"
    monkeypatch.setenv("COLUMNS", "80")
    loaded = click.Group(commands={name: _command((name,)) for name in COMMANDS})
    ctx = click.Context(loaded, info_name="gitops-lab", max_content_width=100)
    formatter = ctx.make_formatter()
    loaded.format_commands(ctx, formatter)
    assert formatter.getvalue() in lazy_help


def test_an_unknown_command_is_refused_with_the_nearest_lazy_one(capsys):
    with pytest.raises(SystemExit) as done:
        main(["promot"], prog_name="gitops-lab")
    assert done.value.code == 2
    assert "No such command 'promot'. Did you mean 'promote'?" in capsys.readouterr().err


def test_every_command_help_has_examples():
    for path in _commands(main):
        cmd = _command(path)
        if isinstance(cmd, click.Group):
            continue
        assert "Examples:" in (cmd.help or ""), f"`gitops-lab {' '.join(path)} --help` has no examples"

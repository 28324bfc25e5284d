"""`gitops-lab --help` stays fast: it must not import the Kubernetes client or docker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gitops_lab.cli import main

HEAVY = ("kubernetes", "docker", "urllib3", "tenacity")


def _commands(group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))


@pytest.mark.parametrize("args", [()] + [c for c in _commands(main)], ids=lambda a: " ".join(a) or "gitops-lab")
def test_help_imports_no_heavy_module(args):
    code = (
        "import sys\n"
        "from gitops_lab.cli import main\n"
        f"try:\n    main([*{list(args)!r}, '--help'], prog_name='gitops-lab')\n"
        "except SystemExit:\n    pass\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy = proc.stdout.strip().splitlines()[-1]
    assert heavy == "HEAVY=", f"--help imported {heavy}"
    assert "Usage:" in proc.stdout


def test_every_command_help_has_examples():
    for path in _commands(main):
        cmd = main
        for name in path:
            cmd = cmd.commands[name]
        if hasattr(cmd, "commands"):
            continue
        assert "Examples:" in (cmd.help or ""), f"`gitops-lab {' '.join(path)} --help` has no examples"

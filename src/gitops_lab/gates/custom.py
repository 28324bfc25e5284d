"""Custom gates: commands that gates.yaml declares, run wherever the built-in gates run.

A custom gate is a program (a governance module's check, a team's own test):
gates.yaml's ``custom:`` section names it, gives its command line and a
timeout, and ``required:`` lists it per destination like a built-in gate.

The contract (docs/gates.md, "Custom gates"):
- it runs in the working copy's root, without a shell; ``{python}``,
  ``{repo}``, ``{version}``, ``{artifact}``, ``{from}``, ``{to}`` and
  ``{current}`` in its arguments are replaced, and the same facts are in its
  environment as ``GITOPS_LAB_*`` variables;
- exit code 0 is pass, 1 is fail; any other code, a timeout or a signal means
  the gate itself is broken;
- on stdout it prints one JSON object, its evidence:
  ``{"summary": "one line", "details": ["pass: ...", "fail: ..."]}``.

A broken gate (missing command, not executable, timeout, no or bad JSON, too
much output, evidence that contradicts its exit code) fails closed: its
verdict is fail, its summary says what is wrong and its ``fix`` what to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_lab.gates.result import GateContext, GateResult
from gitops_lab.deadline import Deadline, current_deadline

SECTION = "custom"
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0
#: Evidence larger than this is not evidence: the program is stopped.
OUTPUT_LIMIT = 64 * 1024
#: A summary goes into a commit trailer: one short line.
SUMMARY_LIMIT = 200
DETAIL_PREFIXES = ("pass: ", "warn: ", "fail: ")
TOKENS = ("python", "repo", "version", "artifact", "from", "to", "current")
_TOKEN_RE = re.compile(r"\{(" + "|".join(TOKENS) + r")\}")


@dataclass(frozen=True)
class CustomGate:
    name: str
    command: tuple[str, ...]
    timeout: float
    description: str = ""

    @property
    def where(self) -> str:
        return f"gates.yaml {SECTION}.{self.name}"


def problems(section: Any, builtin: tuple[str, ...]) -> list[str]:
    """Everything wrong with gates.yaml's ``custom:`` section, each naming its key."""
    if section is None:
        return []
    if not isinstance(section, dict):
        return [f"{SECTION}: must map each custom gate's name to {{command: [...], timeout: SECONDS}}"]
    found: list[str] = []
    for name, spec in section.items():
        where = f"{SECTION}.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            found.append(f"{where}: a gate name is lowercase words joined by dashes (segment-accuracy)")
            continue
        if name in builtin:
            found.append(f"{where}: {name} is a built-in gate; give the custom gate another name")
            continue
        if not isinstance(spec, dict):
            found.append(f"{where}: expected {{command: [PROGRAM, ARG, ...], timeout: SECONDS}}")
            continue
        for key in sorted(set(spec) - {"command", "timeout", "description"}, key=str):
            found.append(f"{where}: unknown key {key!r} (expected command, timeout, description)")
        command = spec.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in command)
        ):
            found.append(f"{where}.command: expected a non-empty list, the program and its arguments")
        elif not str(command[0]).strip():
            found.append(f"{where}.command: the program (its first item) is empty")
        timeout = spec.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
            found.append(f"{where}.timeout: expected seconds, more than 0 and at most {MAX_TIMEOUT:g}")
        if not isinstance(spec.get("description", ""), str):
            found.append(f"{where}.description: expected text")
    return found


def parse(section: Any) -> dict[str, CustomGate]:
    """The custom gates of a section ``problems`` found nothing wrong with, in declaration order."""
    return {
        name: CustomGate(
            name,
            tuple(str(a) for a in spec["command"]),
            float(spec.get("timeout", DEFAULT_TIMEOUT)),
            spec.get("description", ""),
        )
        for name, spec in (section or {}).items()
    }


def facts(ctx: GateContext) -> dict[str, str]:
    """What a custom gate is told about the promotion: its argument tokens and environment."""
    return {
        "python": sys.executable,
        "repo": str(ctx.root),
        "version": ctx.version,
        "artifact": str(ctx.root / "base" / "models" / f"{ctx.version}.json"),
        "from": ctx.src,
        "to": ctx.dst,
        "current": ctx.current,
    }


def check(gate: CustomGate, ctx: GateContext, deadline: Deadline | None = None) -> GateResult:
    """Run one custom gate on the promotion ``ctx`` describes, within its timeout and the command's deadline."""
    told = facts(ctx)
    argv = [_TOKEN_RE.sub(lambda m: told[m.group(1)], arg) for arg in gate.command]
    program = _resolve(argv[0], ctx.root)
    if isinstance(program, tuple):
        return _broken(gate, *program)
    env = {**os.environ, "GITOPS_LAB_GATE": gate.name}
    env.update({f"GITOPS_LAB_{key.upper()}": value for key, value in told.items()})

    deadline = deadline or current_deadline()
    timeout, by_deadline = gate.timeout, False
    if deadline is not None and deadline.remaining() < timeout:
        timeout, by_deadline = deadline.remaining(), True
    # Start-up: `--help` reads gates/config.py (and so this module) for its gate choices; what runs a gate
    # (processes, subprocess) loads only when one runs.
    import subprocess

    from gitops_lab.processes import run_capped

    try:
        run = run_capped([program, *argv[1:]], cwd=ctx.root, env=env, timeout=timeout, limit=OUTPUT_LIMIT)
    except subprocess.TimeoutExpired:
        if by_deadline:
            return _broken(
                gate,
                f"stopped at the command's deadline ({timeout:.0f}s were left of it)",
                "give the command a longer --timeout, or make the gate faster",
            )
        return _broken(
            gate,
            f"did not finish within its timeout of {gate.timeout:g}s",
            f"make it faster, or raise `timeout:` in {gate.where}",
        )
    except OSError as error:
        return _broken(gate, f"cannot start {argv[0]}: {error.strerror or error}", f"fix `command:` in {gate.where}")
    if run.overflowed:
        return _broken(
            gate,
            f"printed more than {OUTPUT_LIMIT // 1024} KiB",
            "print one JSON object of evidence on stdout and send logs to a file",
        )
    return _verdict(gate, ctx.version, run.returncode, run.stdout, run.stderr)


def _resolve(program: str, root: Path) -> str | tuple[str, str]:
    """The program's path, or (problem, fix) when it cannot be run."""
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else root / program
        if not path.is_file():
            return f"command {program} not found in the repository", "commit the program, or fix `command:`"
        if not os.access(path, os.X_OK):
            return (
                f"command {program} is not executable",
                f"`chmod +x {program}` and commit it, or run it through an interpreter (`{{python}}`)",
            )
        return str(path)
    found = shutil.which(program)
    if found is None:
        return f"command {program} not found on PATH", f"install {program}, or fix `command:`"
    return found


def _verdict(gate: CustomGate, version: str, code: int | None, stdout: bytes, stderr: bytes) -> GateResult:
    if code is None or code not in (0, 1):
        said = _last_line(stderr)
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        return _broken(
            gate,
            f"{how} (0 is pass, 1 is fail)" + (f": {said}" if said else ""),
            "run its command by hand in the repository and fix what it says",
        )
    evidence = _evidence(stdout)
    if isinstance(evidence, str):
        return _broken(gate, evidence, 'print one JSON object: {"summary": "...", "details": ["pass: ..."]}')
    summary, details = evidence
    passed = code == 0
    if passed and any(d.startswith("fail: ") for d in details):
        return _broken(
            gate, "exited 0 (pass) but its evidence has fail: lines", "exit 1 when a check fails, 0 only when all pass"
        )
    fix = "" if passed else f"{version} fails it (its evidence says where): promote another version (--version)"
    return GateResult(gate.name, passed, summary, details, fix=fix)


def _evidence(stdout: bytes) -> tuple[str, list[str]] | str:
    """(summary, details), or what is wrong with the evidence."""
    try:
        data = json.loads(stdout.decode("utf-8"))
    except UnicodeDecodeError:
        return "printed bytes that are not UTF-8 text"
    except ValueError:
        text = _last_line(stdout)
        return "printed no JSON evidence" + (f" (last line: {text[:80]!r})" if text else " (stdout was empty)")
    if not isinstance(data, dict):
        return f"printed JSON {type(data).__name__}, not an object"
    summary = data.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        return 'evidence has no "summary" text'
    details = data.get("details", [])
    if not isinstance(details, list) or not all(isinstance(d, str) for d in details):
        return 'evidence "details" is not a list of strings'
    odd = [d for d in details if not d.startswith(DETAIL_PREFIXES)]
    if odd:
        return f'evidence line {odd[0][:60]!r} does not start with "pass: ", "warn: " or "fail: "'
    summary = " ".join(summary.split())
    if len(summary) > SUMMARY_LIMIT:
        summary = summary[: SUMMARY_LIMIT - 3] + "..."
    return summary, details


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _broken(gate: CustomGate, problem: str, fix: str) -> GateResult:
    return GateResult(
        gate.name,
        False,
        f"custom gate {gate.name} is broken: {problem}",
        [f"fail: custom gate {gate.name} ({gate.where}) is broken: {problem}"],
        fix=fix if gate.where in fix else f"{fix} ({gate.where})",
    )

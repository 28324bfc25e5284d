"""Progress reporting for long steps, handed down from the CLI.

Lower layers never print; they call the reporter they were given. Three kinds:
a terminal reporter (status lines that close with a tick and a duration), a
plain one for CI logs, and a JSON one that writes one event per line. All of
them write to stderr: stdout is kept for data (tables, JSON results).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Generic, Iterator, TypeVar

#: The marks of a finished step, and of every verdict the CLI prints.
TICK = "✓"
CROSS = "✗"


class Reporter:
    """Interface and the silent implementation (used by library callers and tests)."""

    @contextmanager
    def step(self, title: str) -> Iterator["Step"]:
        step = Step(self, title)
        self._start(step)
        try:
            yield step
        except BaseException as exc:
            self._end(step, ok=False, error=exc)
            raise
        else:
            self._end(step, ok=not step.failed)

    def info(self, message: str) -> None:
        """A line of information that is not a step."""

    def warn(self, message: str) -> None:
        """Something the user should know but that does not stop the command."""

    def _start(self, step: "Step") -> None:
        pass

    def _end(self, step: "Step", ok: bool, error: BaseException | None = None) -> None:
        pass

    def _update(self, step: "Step") -> None:
        pass


class Step:
    """One named step. ``update`` changes its detail (what it is waiting for)."""

    def __init__(self, reporter: Reporter, title: str):
        self.reporter = reporter
        self.title = title
        self.detail = ""
        self.outcome = ""
        self.failed = False
        self.started = time.monotonic()

    def update(self, detail: str) -> None:
        self.detail = detail
        self.reporter._update(self)

    def done(self, outcome: str) -> None:
        """Say how the step ended, for example "no change"."""
        self.outcome = outcome

    def fail(self, outcome: str) -> None:
        """The step ran to its end and found a failure (a verdict, not an error): it closes with ✗."""
        self.outcome = outcome
        self.failed = True

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _closing(step: Step, ok: bool) -> str:
    """A finished step's line: its mark, title, outcome and duration."""
    outcome = f": {step.outcome}" if step.outcome else ""
    return f"{TICK if ok else CROSS} {step.title}{outcome} ({_duration(step.elapsed)})"


class PlainReporter(Reporter):
    """One line when a step starts and one when it ends: for CI logs and pipes."""

    def __init__(self, stream: IO[str] | None = None):
        self.stream = stream or sys.stderr

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        self._write(message)

    def warn(self, message: str) -> None:
        self._write(f"warning: {message}")

    def _start(self, step: Step) -> None:
        self._write(f"• {step.title} ...")

    def _update(self, step: Step) -> None:
        self._write(f"  {step.title}: {step.detail}")

    def _end(self, step: Step, ok: bool, error: BaseException | None = None) -> None:
        self._write(_closing(step, ok))


class TerminalReporter(PlainReporter):
    """On a terminal, a step's line is rewritten in place as its detail changes.

    Only the last line on screen can be rewritten. A step that opens inside
    another, or a message, first ends the open line, so lines read in the
    order things happened; a nested step is indented under its parent, and a
    parent whose line scrolled away closes with a line of its own.
    """

    def __init__(self, stream: IO[str] | None = None):
        super().__init__(stream)
        self._open: list[Step] = []
        #: The step whose status line is the unfinished last line on screen, if any.
        self._live: Step | None = None

    def _indent(self, step: Step) -> str:
        return "  " * self._open.index(step) if step in self._open else "  " * len(self._open)

    def _break(self) -> None:
        """End the unfinished status line, keeping it on screen."""
        if self._live is not None:
            self.stream.write("\n")
            self._live = None

    def _write(self, line: str) -> None:
        self._break()
        super()._write(line)

    def _show(self, step: Step, text: str) -> None:
        if self._live is step:
            self.stream.write("\r\x1b[2K")
        else:
            self._break()
        self.stream.write(self._indent(step) + text)
        self.stream.flush()
        self._live = step

    def _start(self, step: Step) -> None:
        self._break()
        self._open.append(step)
        self._show(step, f"• {step.title} ...")

    def _update(self, step: Step) -> None:
        self._show(step, f"• {step.title}: {step.detail}")

    def _end(self, step: Step, ok: bool, error: BaseException | None = None) -> None:
        self._show(step, _closing(step, ok))
        self._break()
        self.stream.flush()
        if step in self._open:
            self._open.remove(step)


class JsonReporter(PlainReporter):
    """One JSON object per event, on stderr, for scripts that follow progress."""

    def _event(self, **fields: object) -> None:
        self._write(json.dumps(fields, sort_keys=True))

    def info(self, message: str) -> None:
        self._event(event="info", message=message)

    def warn(self, message: str) -> None:
        self._event(event="warning", message=message)

    def _start(self, step: Step) -> None:
        self._event(event="step_started", step=step.title)

    def _update(self, step: Step) -> None:
        self._event(event="step_progress", step=step.title, detail=step.detail)

    def _end(self, step: Step, ok: bool, error: BaseException | None = None) -> None:
        fields: dict[str, object] = {
            "event": "step_finished" if ok else "step_failed",
            "step": step.title,
            "seconds": round(step.elapsed, 3),
        }
        if step.outcome:
            fields["outcome"] = step.outcome
        if error is not None:
            fields["error"] = str(error)
        self._event(**fields)


def reporter_for(output: str, stream: IO[str] | None = None) -> Reporter:
    """Pick the reporter for an output format and the kind of stream."""
    stream = stream or sys.stderr
    if output == "json":
        return JsonReporter(stream)
    if stream.isatty():
        return TerminalReporter(stream)
    return PlainReporter(stream)


Context = TypeVar("Context")


@dataclass(frozen=True)
class NamedStep(Generic[Context]):
    """One step of a command that is a list of steps (`up`, `class create`, `class delete`): ``run``
    under a status line titled ``title`` (None: the step reports its own lines, or none)."""

    name: str
    run: Callable[[Context, Step], None]
    title: Callable[[Context], str | None] = lambda ctx: None


def run_steps(steps: Sequence[NamedStep[Context]], ctx: Context, reporter: Reporter) -> None:
    """Run ``steps`` in order on one context, each under its own status line when it has a title."""
    for step in steps:
        title = step.title(ctx)
        if title is None:
            step.run(ctx, Step(Reporter(), step.name))
        else:
            with reporter.step(title) as status:
                step.run(ctx, status)

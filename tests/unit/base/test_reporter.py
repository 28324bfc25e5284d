"""The reporters as a user sees them: on a terminal, what the screen shows once
carriage returns and line erases have done their work; in a log, the lines."""

from __future__ import annotations

import io
import re

import pytest

from gitops_lab.reporter import CROSS, TICK, PlainReporter, TerminalReporter

_DURATION = re.compile(r" \(\d+(\.\d+s|m\d\ds)\)$")


def screen(written: str) -> list[str]:
    """The lines a terminal shows after ``written``: ``\\r`` returns to the line's
    start, ``ESC[2K`` erases the line, ``\\n`` starts the next one. Durations are
    dropped, so lines compare exactly."""
    lines = [""]
    for token in re.split(r"(\r|\n|\x1b\[2K)", written):
        if token == "\n":
            lines.append("")
        elif token == "\x1b[2K":
            lines[-1] = ""
        elif token and token != "\r":
            lines[-1] += token
    if lines[-1] == "":
        lines.pop()
    return [_DURATION.sub("", line) for line in lines]


def test_a_step_rewrites_its_own_line_and_ends_with_a_tick():
    out = io.StringIO()
    reporter = TerminalReporter(out)
    with reporter.step("Creating cluster") as step:
        step.update("waiting for the node")
        step.done("created")
    assert screen(out.getvalue()) == [f"{TICK} Creating cluster: created"]


def test_nested_steps_read_in_order_with_the_inner_one_indented():
    out = io.StringIO()
    reporter = TerminalReporter(out)
    with reporter.step("Installing Argo CD") as outer:
        outer.update("applying manifests")
        with reporter.step("Waiting for argocd-server") as inner:
            inner.update("0/1 ready")
        with reporter.step("Waiting for argocd-repo-server"):
            pass
    with reporter.step("Seeding the repository"):
        pass
    assert screen(out.getvalue()) == [
        "• Installing Argo CD: applying manifests",
        f"  {TICK} Waiting for argocd-server",
        f"  {TICK} Waiting for argocd-repo-server",
        f"{TICK} Installing Argo CD",
        f"{TICK} Seeding the repository",
    ]


def test_three_levels_and_a_failure_close_innermost_first():
    out = io.StringIO()
    reporter = TerminalReporter(out)
    with pytest.raises(RuntimeError):
        with reporter.step("lab test promotion"):
            with reporter.step("step 1: setup"):
                with reporter.step("Waiting for dev"):
                    raise RuntimeError("timed out")
    assert screen(out.getvalue()) == [
        "• lab test promotion ...",
        "  • step 1: setup ...",
        f"    {CROSS} Waiting for dev",
        f"  {CROSS} step 1: setup",
        f"{CROSS} lab test promotion",
    ]


def test_a_message_inside_a_step_keeps_the_steps_line_and_its_place():
    out = io.StringIO()
    reporter = TerminalReporter(out)
    with reporter.step("Promoting v2 to staging") as step:
        step.update("pushing")
        reporter.warn("the gate policy was skipped")
        step.update("waiting for staging")
    assert screen(out.getvalue()) == [
        "• Promoting v2 to staging: pushing",
        "warning: the gate policy was skipped",
        f"{TICK} Promoting v2 to staging",
    ]


def test_plain_reporter_writes_nested_steps_in_order_one_line_each():
    out = io.StringIO()
    reporter = PlainReporter(out)
    with reporter.step("outer"):
        with reporter.step("inner") as inner:
            inner.update("half way")
    assert screen(out.getvalue()) == [
        "• outer ...",
        "• inner ...",
        "  inner: half way",
        f"{TICK} inner",
        f"{TICK} outer",
    ]


def test_a_list_of_named_steps_shows_a_line_for_each_titled_step_and_stops_at_a_failure():
    from gitops_lab.reporter import NamedStep, run_steps

    out, ran = io.StringIO(), []

    def quiet(ctx: list, status) -> None:
        ctx.append("quiet")
        status.done("never shown")

    def titled(ctx: list, status) -> None:
        ctx.append("titled")
        status.done(f"{len(ctx)} so far")

    def failing(ctx: list, status) -> None:
        raise RuntimeError("no cluster")

    steps = (
        NamedStep("quiet", quiet),
        NamedStep("titled", titled, lambda ctx: f"Step {len(ctx) + 1}"),
        NamedStep("failing", failing, lambda ctx: "Connecting"),
        NamedStep("after", titled, lambda ctx: "Never run"),
    )
    with pytest.raises(RuntimeError):
        run_steps(steps, ran, TerminalReporter(out))
    assert ran == ["quiet", "titled"]
    assert screen(out.getvalue()) == [f"{TICK} Step 2: 2 so far", f"{CROSS} Connecting"]

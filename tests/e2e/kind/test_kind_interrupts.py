"""`gitops-lab up` on kind, interrupted with SIGINT at each of its steps, then run again, completes.

One environment is taken through the whole of `up` one step at a time: a run
is started, Ctrl-C (SIGINT to its process group, as a terminal sends it)
arrives as soon as the step's start line shows, the run must end with exit 130
and one line on stderr, and the next run must get at least that far. A last
run finishes; the environment is then healthy and a further run changes
nothing.
"""

from __future__ import annotations

import pytest

from kindbed.fixtures import interrupt, wait_for_free_lab_ports, wait_for_line

NAME = "e2e-interrupts"
ENGINE = "flux"
# The start lines of up's steps (PlainReporter: "• <title> ..."), in the order they run.
STEPS = (
    "• Checking this machine",
    "• Pulling",
    "• Creating kind cluster",
    "• Loading the images into kind cluster",
    "• Connecting to the cluster",
    "• Applying",
    "• Waiting up to",
    "• Starting the Git server",
    "• Seeding the lab repository",
    "• Registering dev, staging and prod",
)


def _up_args(bed) -> list[str]:
    return ["up", "--engine", ENGINE, "--preload", "--engine-manifests", str(bed.manifests), "--timeout", "900"]


@pytest.fixture(scope="module")
def bed(kind_bed):
    wait_for_free_lab_ports()
    yield kind_bed
    kind_bed.gitops_lab("down", name=NAME, check=False)


@pytest.mark.parametrize(
    "marker", STEPS, ids=[s.removeprefix("• ").split(" ")[0].lower() + "-" + str(i) for i, s in enumerate(STEPS)]
)
def test_sigint_at_a_step_ends_cleanly(bed, marker):
    process = bed.start(*_up_args(bed), name=NAME)
    lines = wait_for_line(process, marker, timeout=900)
    code = interrupt(process)
    rest = process.stdout.read() if process.stdout else ""
    errors = [line for line in (lines[-3:] + rest.splitlines()) if line.startswith("error:")]
    assert code == 130, f"exit {code} after SIGINT at {marker!r}:\n{''.join(lines[-20:])}{rest}"
    assert len(errors) == 1, f"want one error line, got:\n{rest}"


def test_a_run_after_the_interrupts_completes_and_a_further_one_changes_nothing(bed):
    done = bed.gitops_lab(*_up_args(bed), "--output", "json", name=NAME).json()
    assert {e["environment"]: e["healthy"] for e in done["environments"]} == {
        "dev": True,
        "staging": True,
        "prod": True,
    }
    again = bed.gitops_lab(*_up_args(bed), "--output", "json", name=NAME).json()
    assert again["changed"] == []

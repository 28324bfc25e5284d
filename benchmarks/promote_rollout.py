"""Time from `gitops-lab promote` to rollout confirmed, per engine, on the testbed, against its floor.

Starts the testbed (real kube-apiserver, real Argo CD / Flux controllers, kwok
nodes, a loopback Git server), runs `gitops-lab up`, then promotes staging
back and forth between two model versions N times. Each promotion is timed
from the call until the command returns, which it does only when the engine
reports the pushed commit applied and healthy AND the Deployment rolled out
with the new version on its pod template.

Each promotion is split by the moments the command's own progress events
(``--output json``) reach stderr: the CLI before its wait (fetch, gates, commit,
push), then its wait, itself split where the tool first sees the rollout under
way (engine noticing and applying; rollout and the engine's confirmation).
The command runs in this process, so Python's start-up and exit are not in
the figure (benchmarks/cli_startup.py measures those).

In turn with each promotion (A B A B ...), the floor: the same pod template
change (the model-version label) applied directly to a copy of staging's
Deployment beside it, timed until that copy has rolled out.

    python tests/testbed/build.py            # once
    python benchmarks/promote_rollout.py --engine argocd --engine flux --runs 10

Target (issue 24): median at most 0.8 s for both engines.
"""

from __future__ import annotations

import sys

from testbed_session import DirectApply, lab_environment, main, summary, timed_json_run, with_floor, with_parts

TARGET_MEDIAN_S = 0.8
PARTS = (
    "CLI before its wait (fetch, gates, commit, push)",
    "the wait: engine and rollout",
    "  of it, the engine noticing and applying",
    "  of it, the rollout and the engine's confirmation",
    "after the wait",
)


def promotion_parts(events: list[tuple[float, dict]], total: float) -> dict[str, float]:
    """A promotion's parts from its progress events (seconds since the call, event)."""
    waiting = [(at, e) for at, e in events if str(e.get("step", "")).startswith("Waiting up to")]
    wait_start = next((at for at, e in waiting if e["event"] == "step_started"), None)
    wait_end = next((at for at, e in waiting if e["event"] == "step_finished"), None)
    rollout = next(
        (at for at, e in waiting if e["event"] == "step_progress" and str(e.get("detail", "")).startswith("rollout:")),
        None,
    )
    if wait_start is None or wait_end is None:
        return {}
    parts = {PARTS[0]: wait_start, PARTS[1]: wait_end - wait_start, PARTS[4]: total - wait_end}
    # Split only when the tool saw the rollout under way: Argo CD reports healthy once the rollout is
    # done, so its rollout is already over at the tool's first look.
    if rollout is not None:
        parts[PARTS[2]] = rollout - wait_start
        parts[PARTS[3]] = wait_end - rollout
    return parts


def bench_engine(engine: str, runs: int, cluster, git) -> dict:
    samples, floors = [], []
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    with lab_environment(engine, cluster, git):
        floor = DirectApply(cluster.kubeconfig, "staging")
        floor.change(version="v1")  # the copy's first rollout (pods created), not counted
        try:
            for i in range(runs):
                version = "v2" if i % 2 == 0 else "v1"
                # Going back to v1 would be refused by model-eval's regression rule; skip it (recorded).
                args = ["promote", "--to", "staging", "--version", version, "--skip-gate", "model-eval"]
                total, events = timed_json_run(*args, "--timeout", "120")
                samples.append(total)
                for name, seconds in promotion_parts(events, total).items():
                    parts[name].append(seconds)
                floors.append(floor.change(version=version))
                # A promotion whose gates already passed on the same inputs reuses their verdicts (they say so).
                reused = any("(reused" in str(e.get("message", "")) for _, e in events)
                print(
                    f"  {engine} promotion {i + 1}/{runs} to {version}: {total:.2f} s (floor {floors[-1]:.2f} s)"
                    + (", gates reused" if reused else ""),
                    file=sys.stderr,
                )
        finally:
            floor.remove()
    result = with_parts(summary(engine, samples, TARGET_MEDIAN_S, limit="median"), parts)
    return with_floor(result, samples, floors, "the same pod template change applied directly")


if __name__ == "__main__":
    sys.exit(
        main(
            __doc__.splitlines()[0],
            10,
            bench_engine,
            "promote -> rollout confirmed",
            f"median <= {TARGET_MEDIAN_S} s",
        )
    )

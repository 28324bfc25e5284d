"""Time `gitops-lab lab reset` on the testbed, per engine, against its floor.

Starts the testbed (real kube-apiserver, real Argo CD / Flux controllers, kwok
nodes, a loopback Git server), runs `gitops-lab up`, starts the gitops-basics
lab, then N times: solve its first step (dev scaled to 2 replicas, pushed and
rolled out) and time `lab reset`, which returns only when every environment
serves the start point again (engine applied the reset commit and is healthy,
Deployments rolled out). Recreating a cluster takes minutes; a reset must not.

Each reset is split by the moments its own progress events (``--output json``)
reach stderr: the work before its first wait (the reset commit and its push),
each environment's wait, and the rest. In turn with each reset (A B A B ...),
the floor: the same change made directly, a copy of dev's Deployment beside it
scaled from 2 replicas back to 1, timed until that copy has rolled out.

    python tests/testbed/build.py            # once
    python benchmarks/lab_reset.py --engine argocd --engine flux --runs 5

Target (issue 24): median at most 0.8 s, and no reset timing out.
"""

from __future__ import annotations

import re
import sys

from testbed_session import DirectApply, lab_environment, main, run, summary, timed_json_run, with_floor, with_parts

TARGET_S = 0.8
LAB = "gitops-basics"
WAIT = re.compile(r"Waiting up to .* for (\S+) to apply")


def reset_parts(events: list[tuple[float, dict]], total: float) -> dict[str, float]:
    """A reset's parts from its progress events (seconds since the call, event)."""
    parts: dict[str, float] = {}
    started: dict[str, float] = {}
    first = last = None
    for at, event in events:
        found = WAIT.match(str(event.get("step", "")))
        if not found:
            continue
        if event["event"] == "step_started":
            started[event["step"]] = at
            first = at if first is None else first
        elif event["event"] == "step_finished" and event["step"] in started:
            parts[f"the wait for {found.group(1)}"] = at - started[event["step"]]
            last = at
    if first is None or last is None:
        return {}
    return {"before the first wait (reset commit, push)": first, **parts, "after the last wait": total - last}


def bench_engine(engine: str, runs: int, cluster, git) -> dict:
    samples, floors = [], []
    parts: dict[str, list[float]] = {}
    with lab_environment(engine, cluster, git) as cli:
        run(cli, "lab", "start", LAB, "--timeout", "180")
        floor = DirectApply(cluster.kubeconfig, "dev")
        try:
            for i in range(runs):
                run(cli, "lab", "solve", "--timeout", "120")
                floor.change(replicas=2)  # the solved state, not counted
                total, events = timed_json_run("lab", "reset", "--timeout", "120")
                samples.append(total)
                for name, seconds in reset_parts(events, total).items():
                    parts.setdefault(name, []).append(seconds)
                floors.append(floor.change(replicas=1))
                print(f"  {engine} reset {i + 1}/{runs}: {total:.2f} s (floor {floors[-1]:.2f} s)", file=sys.stderr)
        finally:
            floor.remove()
    result = with_parts(summary(engine, samples, TARGET_S, limit="median"), parts)
    return with_floor(result, samples, floors, "dev's Deployment scaled from 2 replicas to 1 directly")


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], 5, bench_engine, "lab reset", f"median <= {TARGET_S} s"))

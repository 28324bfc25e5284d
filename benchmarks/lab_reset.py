"""Time `gitops-lab lab reset` on the testbed, per engine.

Starts the testbed (real kube-apiserver, real Argo CD / Flux controllers, kwok
nodes, a loopback Git server), runs `gitops-lab up`, starts the gitops-basics
lab, then N times: solve its first step (dev scaled to 2 replicas, pushed and
rolled out) and time `lab reset`, which returns only when every environment
serves the start point again (engine applied the reset commit and is healthy,
Deployments rolled out). Recreating a cluster takes minutes; a reset must not.

    python tests/testbed/build.py            # once
    python benchmarks/lab_reset.py --engine argocd --engine flux --runs 5

Target (issue 6): at most 15 s per reset (p95).
"""

from __future__ import annotations

import sys
import time

from testbed_session import lab_environment, main, run, summary

TARGET_S = 15.0
LAB = "gitops-basics"


def bench_engine(engine: str, runs: int, cluster, git) -> dict:
    samples = []
    with lab_environment(engine, cluster, git) as cli:
        run(cli, "lab", "start", LAB, "--timeout", "180")
        for i in range(runs):
            run(cli, "lab", "solve", "--timeout", "120")
            start = time.perf_counter()
            run(cli, "lab", "reset", "--timeout", "120")
            samples.append(time.perf_counter() - start)
            print(f"  {engine} reset {i + 1}/{runs}: {samples[-1]:.2f} s", file=sys.stderr)
    return summary(engine, samples, TARGET_S, limit="p95")


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], 5, bench_engine, "lab reset", f"p95 <= {TARGET_S:.0f} s"))

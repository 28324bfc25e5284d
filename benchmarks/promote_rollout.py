"""Time from `gitops-lab promote` to rollout confirmed, per engine, on the testbed.

Starts the testbed (real kube-apiserver, real Argo CD / Flux controllers, kwok
nodes, a loopback Git server), runs `gitops-lab up`, then promotes staging
back and forth between two model versions N times. Each promotion is timed
from the call until the command returns, which it does only when the engine
reports the pushed commit applied and healthy AND the Deployment rolled out
with the new version on its pod template.

    python tests/testbed/build.py            # once
    python benchmarks/promote_rollout.py --engine argocd --engine flux --runs 10

Target (issue 4): median at most 5 s for both engines.
"""

from __future__ import annotations

import sys
import time

from testbed_session import lab_environment, main, run, summary

TARGET_MEDIAN_S = 5.0


def bench_engine(engine: str, runs: int, cluster, git) -> dict:
    samples = []
    with lab_environment(engine, cluster, git) as cli:
        for i in range(runs):
            version = "v2" if i % 2 == 0 else "v1"
            start = time.perf_counter()
            # Going back to v1 would be refused by model-eval's regression rule; skip it (recorded).
            run(cli, "promote", "--to", "staging", "--version", version, "--skip-gate", "model-eval",
                "--timeout", "120")
            samples.append(time.perf_counter() - start)
            print(f"  {engine} promotion {i + 1}/{runs} to {version}: {samples[-1]:.2f} s", file=sys.stderr)
    return summary(engine, samples, TARGET_MEDIAN_S, limit="median")


if __name__ == "__main__":
    sys.exit(main(__doc__.splitlines()[0], 10, bench_engine, "promote -> rollout confirmed", f"median <= {TARGET_MEDIAN_S:.0f} s"))

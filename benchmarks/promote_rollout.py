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

import argparse
import json
import sys
import time

from testbed_session import lab_environment, per_engine, run, summary, testbed_missing

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", choices=("argocd", "flux"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args()
    missing = testbed_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    results = per_engine(args.engine or ["argocd", "flux"],
                         lambda engine, cluster, git: bench_engine(engine, args.runs, cluster, git))
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['engine']:7} promote -> rollout confirmed over {r['runs']} promotions: "
                  f"median {r['median_s']:.2f} s, p95 {r['p95_s']:.2f} s (min {r['min_s']:.2f}, max {r['max_s']:.2f}); "
                  f"target median <= {TARGET_MEDIAN_S:.0f} s: {'met' if r['within_target'] else 'MISSED'}")
    return 0 if all(r["within_target"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

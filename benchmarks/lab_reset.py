"""Time `gitops-lab lab reset` on the testbed, per engine.

Starts the testbed (real kube-apiserver, real Argo CD / Flux controllers, kwok
nodes, a loopback Git server), runs `gitops-lab up`, starts the gitops-basics
lab, then N times: solve its first step (dev scaled to 2 replicas, pushed and
rolled out) and time `lab reset`, which returns only when every environment
serves the start point again (engine applied the reset commit and is healthy,
Deployments rolled out). Recreating a cluster takes minutes; a reset must not.

    python tests/testbed/build.py            # once
    python benchmarks/lab_reset.py --engine argocd --engine flux --runs 5

Target (issue 6): at most 15 s per reset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TARGET_S = 15.0
LAB = "gitops-basics"


def _run(cli, *args: str):
    result = cli(*args)
    if result.exit_code != 0:
        raise SystemExit(f"`gitops-lab {' '.join(args)}` failed:\n{result.output}")
    return result


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def bench_engine(engine: str, runs: int, cluster, git) -> dict:
    from click.testing import CliRunner

    from gitops_lab.cli import main
    from testbed import fixtures

    engine_proc = (fixtures.start_argocd if engine == "argocd" else fixtures.start_flux)(cluster)
    os.environ["GITOPS_LAB_STATE_DIR"] = tempfile.mkdtemp(prefix=f"bench-reset-{engine}-")
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    samples = []
    try:
        url = git.create_repo(f"bench-reset-{engine}-{int(time.time())}")
        _run(cli, "up", "--provider", "existing", "--kubeconfig", cluster.kubeconfig, "--engine", engine,
             "--engine-install", "external", "--git-url", url, "--timeout", "300")
        _run(cli, "lab", "start", LAB, "--timeout", "180")
        for i in range(runs):
            _run(cli, "lab", "solve", "--timeout", "120")
            start = time.perf_counter()
            _run(cli, "lab", "reset", "--timeout", "120")
            samples.append(time.perf_counter() - start)
            print(f"  {engine} reset {i + 1}/{runs}: {samples[-1]:.2f} s", file=sys.stderr)
    finally:
        engine_proc.stop()
    ordered = sorted(samples)
    return {
        "engine": engine, "runs": runs,
        "median_s": round(statistics.median(ordered), 2), "p95_s": round(_percentile(ordered, 0.95), 2),
        "min_s": round(ordered[0], 2), "max_s": round(ordered[-1], 2),
        "target_s": TARGET_S, "within_target": _percentile(ordered, 0.95) <= TARGET_S,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", choices=("argocd", "flux"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args()
    from testbed import fixtures

    reason = fixtures.missing_reason()
    if reason:
        print(f"testbed not built ({reason}); run: python tests/testbed/build.py", file=sys.stderr)
        return 2
    if not os.environ.get("GITOPS_LAB_KUSTOMIZE"):
        os.environ["PATH"] = f"{fixtures.bin_dir()}{os.pathsep}{os.environ['PATH']}"  # the policy gate's kustomize
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-reset-testbed-"))
    cluster = fixtures.start_cluster(workdir / "cluster")
    git = fixtures.GitServer(workdir / "git").start()
    try:
        for index, engine in enumerate(args.engine or ["argocd", "flux"]):
            if index:
                cluster.stop()
                cluster = fixtures.start_cluster(workdir / f"cluster-{engine}")
            results.append(bench_engine(engine, args.runs, cluster, git))
    finally:
        git.stop()
        cluster.stop()
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['engine']:7} lab reset over {r['runs']} resets: median {r['median_s']:.2f} s, "
                  f"p95 {r['p95_s']:.2f} s (min {r['min_s']:.2f}, max {r['max_s']:.2f}); "
                  f"target <= {TARGET_S:.0f} s: {'met' if r['within_target'] else 'MISSED'}")
    return 0 if all(r["within_target"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What the testbed benchmarks share: a testbed per engine with `gitops-lab up`
done, the CLI in-process, and the summary statistics."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

Cli = Callable[..., object]


def run(cli: Cli, *args: str):
    """Run one gitops-lab command; stop the benchmark with its output if it fails."""
    result = cli(*args)
    if result.exit_code != 0:
        raise SystemExit(f"`gitops-lab {' '.join(args)}` failed:\n{result.output}")
    return result


def summary(engine: str, samples: list[float], target_s: float, limit: str = "median") -> dict:
    """Median, p95, min and max of ``samples``; within target when ``limit`` is at most ``target_s``."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, int(round(0.95 * len(ordered))) - 1))]
    median = statistics.median(ordered)
    return {
        "engine": engine, "runs": len(ordered), "median_s": round(median, 2), "p95_s": round(p95, 2),
        "min_s": round(ordered[0], 2), "max_s": round(ordered[-1], 2), "target_s": target_s,
        "within_target": (median if limit == "median" else p95) <= target_s,
    }


def testbed_missing() -> str | None:
    from testbed import binaries

    reason = binaries.missing_reason()
    return f"testbed not built ({reason}); run: python tests/testbed/build.py" if reason else None


@contextmanager
def lab_environment(engine: str, cluster, git) -> Iterator[Cli]:
    """Start ``engine`` on ``cluster``, run `gitops-lab up` against it, yield the CLI."""
    from click.testing import CliRunner

    from gitops_lab.cli import main
    from testbed import engines

    engine_proc = (engines.start_argocd if engine == "argocd" else engines.start_flux)(cluster)
    os.environ["GITOPS_LAB_STATE_DIR"] = tempfile.mkdtemp(prefix=f"bench-{engine}-")
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    try:
        url = git.create_repo(f"bench-{engine}-{int(time.time() * 1000)}")
        run(cli, "up", "--provider", "existing", "--kubeconfig", cluster.kubeconfig, "--engine", engine,
            "--engine-install", "external", "--git-url", url, "--timeout", "300")
        yield cli
    finally:
        engine_proc.stop()


def per_engine(engines: list[str], bench: Callable[[str, object, object], dict]) -> list[dict]:
    """Run ``bench(engine, cluster, git)`` for each engine, each on a fresh cluster."""
    from testbed import binaries, cluster as testbed_cluster, gitserver

    # The policy gate renders overlays with kustomize: use the testbed's.
    os.environ["PATH"] = f"{binaries.bin_dir()}{os.pathsep}{os.environ['PATH']}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-testbed-"))
    git = gitserver.GitServer(workdir / "git").start()
    results = []
    try:
        for engine in engines:
            cluster = testbed_cluster.start_cluster(workdir / f"cluster-{engine}")
            try:
                results.append(bench(engine, cluster, git))
            finally:
                cluster.stop()
    finally:
        git.stop()
    return results


def parse_args(description: str, more: Callable[[object], object]):
    """--engine, --output and what ``more`` adds; None (after saying why) when the testbed is not built."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--engine", action="append", choices=("argocd", "flux"))
    parser.add_argument("--output", choices=("text", "json"), default="text")
    more(parser)
    args = parser.parse_args()
    missing = testbed_missing()
    if missing:
        print(missing, file=sys.stderr)
        return None
    return args


def main(description: str, default_runs: int, bench: Callable[[str, int, object, object], dict],
         what: str, target: str) -> int:
    """The command line every testbed benchmark shares: --engine, --runs, --output."""
    import json

    args = parse_args(description, lambda parser: parser.add_argument("--runs", type=int, default=default_runs))
    if args is None:
        return 2
    results = per_engine(args.engine or ["argocd", "flux"],
                         lambda engine, cluster, git: bench(engine, args.runs, cluster, git))
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['engine']:7} {what} over {r['runs']} runs: median {r['median_s']:.2f} s, "
                  f"p95 {r['p95_s']:.2f} s (min {r['min_s']:.2f}, max {r['max_s']:.2f}); "
                  f"target {target}: {'met' if r['within_target'] else 'MISSED'}")
    return 0 if all(r["within_target"] for r in results) else 1

"""`gitops-lab up` on real kind, per engine, on the kind bed: up time, cluster memory, promote -> served.

For each engine: a fresh environment, `gitops-lab up --preload` with the
classroom's engine manifests (images preloaded from the bed's dockerd, no
registry), timed end to end; then the kind node's memory (`docker stats`)
with the lab running; then N promotions of staging between v2 and v1, each
timed from the call until the command returns, which it does only when the
engine applied the commit and the real pods serve the new version; `down`.

    python tests/testbed/build.py && python tests/kindbed/build.py   # once
    python benchmarks/kind_up.py --engine flux --engine argocd --runs 10

Prints one JSON object per engine and a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from testbed_session import summary

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kindbed.dockerd import PrivateDockerd  # noqa: E402
from kindbed.fixtures import KindBed, missing_reason  # noqa: E402
from kindbed.layout import cache_dir  # noqa: E402


def node_memory_mib(bed: KindBed, name: str) -> float:
    """Memory the kind node container uses, as `docker stats` reports it."""
    raw = bed.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", f"{name}-control-plane").strip()
    used = raw.split("/")[0].strip()
    units = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "kB": 1 / 1000, "MB": 1, "GB": 1000, "B": 1 / 2**20}
    for unit, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if used.endswith(unit):
            return round(float(used[: -len(unit)]) * factor, 1)
    raise SystemExit(f"cannot read docker stats: {raw!r}")


def bench_engine(bed: KindBed, engine: str, runs: int) -> dict:
    name = f"bench-{engine}"
    start = time.perf_counter()
    bed.gitops_lab(
        "up", "--engine", engine, "--preload", "--engine-manifests", str(bed.manifests), "--timeout", "900", name=name
    )
    up_s = time.perf_counter() - start
    print(f"  {engine}: up in {up_s:.1f} s", file=sys.stderr)
    time.sleep(30)  # let start-up settle before reading memory
    memory = node_memory_mib(bed, name)
    samples = []
    try:
        for i in range(runs):
            version = "v2" if i % 2 == 0 else "v1"
            t0 = time.perf_counter()
            # Going back to v1 would be refused by model-eval's regression rule; skip it (recorded).
            bed.gitops_lab(
                "promote",
                "--to",
                "staging",
                "--version",
                version,
                "--skip-gate",
                "model-eval",
                "--timeout",
                "300",
                name=name,
            )
            samples.append(time.perf_counter() - t0)
            print(f"  {engine} promotion {i + 1}/{runs} to {version}: {samples[-1]:.2f} s", file=sys.stderr)
    finally:
        bed.gitops_lab("down", name=name, check=False)
    result = summary(engine, samples, target_s=0.0)
    result.pop("target_s")
    result.pop("within_target")
    return {"engine": engine, "up_s": round(up_s, 1), "node_memory_mib": memory, "promote_served": result}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", action="append", choices=["flux", "argocd"])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    reason = missing_reason()
    if reason:
        raise SystemExit(f"kind_up.py: {reason}")
    dockerd = PrivateDockerd(cache_dir()).start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="gitops-lab-bench-") as home:
            bed = KindBed(cache_dir(), dockerd, Path(home))
            for engine in args.engine or ["flux", "argocd"]:
                results.append(bench_engine(bed, engine, args.runs))
                print(json.dumps(results[-1]))
    finally:
        dockerd.stop()
    print(f"{'engine':8} {'up':>8} {'node memory':>12} {'promote p50':>12} {'p95':>8}")
    for r in results:
        p = r["promote_served"]
        print(
            f"{r['engine']:8} {r['up_s']:>7.1f}s {r['node_memory_mib']:>9.0f} MiB {p['median_s']:>11.2f}s "
            f"{p['p95_s']:>7.2f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

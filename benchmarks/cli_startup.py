"""How much time `gitops-lab --help` adds beyond starting Python at all.

Runs `python -c pass` and `python -m gitops_lab --help` alternately in the same
run (so both see the same machine load), and reports the medians and the
difference. Target (issue 2): at most 0.25 s added.

    python benchmarks/cli_startup.py [--runs 30] [--output json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

TARGET_SECONDS = 0.25


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    bare_cmd = [sys.executable, "-c", "pass"]
    help_cmd = [sys.executable, "-m", "gitops_lab", "--help"]
    _time(help_cmd)  # warm the file cache and bytecode once
    bare, helped = [], []
    for _ in range(runs):
        bare.append(_time(bare_cmd))
        helped.append(_time(help_cmd))
    added = [h - b for b, h in zip(bare, helped)]
    return {
        "runs": runs,
        "python_pass_median_s": round(statistics.median(bare), 4),
        "help_median_s": round(statistics.median(helped), 4),
        "added_median_s": round(statistics.median(added), 4),
        "added_p95_s": round(sorted(added)[max(0, int(len(added) * 0.95) - 1)], 4),
        "target_s": TARGET_SECONDS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args()
    result = measure(args.runs)
    result["within_target"] = result["added_median_s"] <= TARGET_SECONDS
    if args.output == "json":
        print(json.dumps(result, indent=2))
    else:
        print(f"python -c pass        median {result['python_pass_median_s']:.3f} s")
        print(f"gitops-lab --help     median {result['help_median_s']:.3f} s")
        print(f"added by gitops-lab   median {result['added_median_s']:.3f} s, p95 {result['added_p95_s']:.3f} s "
              f"(target <= {TARGET_SECONDS} s: {'met' if result['within_target'] else 'MISSED'}) over {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

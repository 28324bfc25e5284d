"""How much time `gitops-lab --help` adds beyond starting Python, split against its two floors.

Runs, in turn and in the same run (so each sees the same machine load):

- ``python -c pass``: the interpreter alone, the floor of any Python command;
- ``python -c "import click"``: the interpreter and Click, the floor of any Click CLI;
- ``python -m gitops_lab --help`` and ``python -m gitops_lab history --help`` (a command that only reads Git).

and reports each one's median CPU time (user + system, the child's own accounting, which a shared
machine's load barely moves) and wall time, then the parts: the interpreter, Click, and what
gitops-lab adds on top of Click. Target (issue 24): `--help` adds at most 0.07 s of CPU time to
``python -c pass`` (median). Where the time goes: ``python -X importtime -m gitops_lab --help``.

    python benchmarks/cli_startup.py [--runs 30] [--output json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

TARGET_SECONDS = 0.07
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    'python -c "import click"': [sys.executable, "-c", "import click"],
    "gitops-lab --help": [sys.executable, "-m", "gitops_lab", "--help"],
    "gitops-lab history --help": [sys.executable, "-m", "gitops_lab", "history", "--help"],
}


def _run(cmd: list[str]) -> tuple[float, float]:
    """One run's CPU seconds (user + system of the finished child) and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.95) - 1)]


def measure(runs: int) -> dict:
    for cmd in COMMANDS.values():
        _run(cmd)  # warm the file cache and bytecode once
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    wall: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, cmd in COMMANDS.items():
            c, w = _run(cmd)
            cpu[name].append(c)
            wall[name].append(w)
    bare, click, helped = cpu["python -c pass"], cpu['python -c "import click"'], cpu["gitops-lab --help"]
    # Paired differences (run i of one against run i of the other): a burst of load hits both.
    added = [h - b for b, h in zip(bare, helped)]
    ours = [h - c for c, h in zip(click, helped)]
    return {
        "runs": runs,
        "commands": {
            name: {
                "cpu_median_s": round(statistics.median(cpu[name]), 4),
                "cpu_p95_s": round(_p95(cpu[name]), 4),
                "wall_median_s": round(statistics.median(wall[name]), 4),
            }
            for name in COMMANDS
        },
        "parts_cpu_median_s": {
            "interpreter": round(statistics.median(bare), 4),
            "click": round(statistics.median([c - b for b, c in zip(bare, click)]), 4),
            "gitops_lab_over_click": round(statistics.median(ours), 4),
        },
        "added_cpu_median_s": round(statistics.median(added), 4),
        "added_cpu_p95_s": round(_p95(added), 4),
        "help_vs_click_floor_ratio": round(statistics.median(helped) / statistics.median(click), 2),
        "target_s": TARGET_SECONDS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args()
    result = measure(args.runs)
    result["within_target"] = result["added_cpu_median_s"] <= TARGET_SECONDS
    if args.output == "json":
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'command':<28}{'cpu median':>12}{'cpu p95':>10}{'wall median':>13}   ({args.runs} runs each, in turn)")
    for name, row in result["commands"].items():
        print(f"{name:<28}{row['cpu_median_s']:>10.3f} s{row['cpu_p95_s']:>8.3f} s{row['wall_median_s']:>11.3f} s")
    parts = result["parts_cpu_median_s"]
    print(
        f"parts of --help (cpu medians): interpreter {parts['interpreter']:.3f} s, click {parts['click']:.3f} s, "
        f"gitops-lab over click {parts['gitops_lab_over_click']:.3f} s "
        f"(--help is {result['help_vs_click_floor_ratio']:.2f}x the click floor)"
    )
    verdict = "met" if result["within_target"] else "MISSED"
    print(
        f"added to python -c pass: cpu median {result['added_cpu_median_s']:.3f} s, "
        f"p95 {result['added_cpu_p95_s']:.3f} s (target <= {TARGET_SECONDS} s: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

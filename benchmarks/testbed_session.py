"""What the testbed benchmarks share: a testbed per engine with `gitops-lab up`
done, the CLI in-process (timed by its own progress events), the direct-apply
floor, and the summary statistics."""

from __future__ import annotations

import contextlib
import io
import json
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
FLOOR_NAME = "model-server-floor"


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
        "engine": engine,
        "runs": len(ordered),
        "median_s": round(median, 2),
        "p95_s": round(p95, 2),
        "min_s": round(ordered[0], 2),
        "max_s": round(ordered[-1], 2),
        "target_s": target_s,
        "within_target": (median if limit == "median" else p95) <= target_s,
    }


class StampedLines(io.TextIOBase):
    """A stderr that keeps each line with the moment it was written."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self._pending = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        now = time.perf_counter()
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self.lines.append((now, line))
        return len(text)


def timed_json_run(*args: str) -> tuple[float, list[tuple[float, dict]]]:
    """Run `gitops-lab ARGS --output json` in this process: its seconds, and each JSON progress event
    with the seconds since the call at which it reached stderr (stops the benchmark if it fails)."""
    from gitops_lab.cli import main as gitops_lab

    err = StampedLines()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            gitops_lab([*args, "--output", "json"], prog_name="gitops-lab")
        except SystemExit as done:
            if done.code:
                printed = "\n".join(line for _, line in err.lines)
                raise SystemExit(f"`gitops-lab {' '.join(args)}` failed:\n{printed}") from None
    total = time.perf_counter() - start
    events = []
    for at, line in err.lines:
        with contextlib.suppress(ValueError):
            events.append((at - start, json.loads(line)))
    return total, events


class DirectApply:
    """A floor: a copy of an environment's Deployment beside it (its own name and selector, so the
    engine's Deployment and the copy never share pods), changed directly and waited for by watch."""

    def __init__(self, kubeconfig: str, env: str, namespace: str | None = None) -> None:
        """``namespace``: the environment's, when this process has no state to find it in (the kind bed)."""
        from gitops_lab.adapters.repo.layout import DEPLOYMENT, RepoLayout
        from gitops_lab.kube.apply import Applier
        from gitops_lab.kube.client import connect
        from gitops_lab.state import load_state

        self.applier = Applier(connect(kubeconfig), field_manager="benchmark-floor")
        if namespace is None:
            repo = load_state().repo_path
            if not repo:
                raise SystemExit("`gitops-lab up` saved no working copy: no floor to copy")
            namespace = RepoLayout(repo).namespace(env)
        self.namespace = namespace
        source = self.applier.get("apps/v1", "Deployment", DEPLOYMENT, self.namespace)
        if source is None:
            raise SystemExit(f"no Deployment {self.namespace}/{DEPLOYMENT} to copy for the floor")
        spec = json.loads(json.dumps(source["spec"]))
        spec["selector"]["matchLabels"]["benchmark"] = "floor"
        spec["template"]["metadata"]["labels"]["benchmark"] = "floor"
        self.obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": FLOOR_NAME}, "spec": spec}

    def change(self, version: str | None = None, replicas: int | None = None) -> float:
        """Seconds from applying the model ``version`` (pod template label) or ``replicas`` on the copy
        until it has rolled out."""
        from gitops_lab.adapters.repo.layout import VERSION_LABEL
        from gitops_lab.deadline import Deadline
        from gitops_lab.kube.rollout import rollout_verdict
        from gitops_lab.kube.wait import wait_for

        if version is not None:
            self.obj["spec"]["template"]["metadata"]["labels"][VERSION_LABEL] = version
        if replicas is not None:
            self.obj["spec"]["replicas"] = replicas
        start = time.perf_counter()
        self.applier.apply(self.obj, self.namespace)
        wait_for(
            self.applier,
            "apps/v1",
            "Deployment",
            FLOOR_NAME,
            self.namespace,
            lambda dep: rollout_verdict(dep, VERSION_LABEL if version else None, version),
            Deadline(120),
            f"{FLOOR_NAME} to roll out",
        )
        return time.perf_counter() - start

    def remove(self) -> None:
        self.applier.delete("apps/v1", "Deployment", FLOOR_NAME, self.namespace)


def with_floor(result: dict, samples: list[float], floors: list[float], what: str) -> dict:
    """``result`` with the floor's statistics and the median of the pairs' ratios (figure / floor)."""
    stats = summary(result["engine"], floors, 0.0)
    result["floor"] = {"what": what, **{k: stats[k] for k in ("median_s", "p95_s", "min_s", "max_s")}}
    result["floor_ratio_median"] = round(statistics.median(s / f for s, f in zip(samples, floors)), 2)
    return result


def with_parts(result: dict, parts: dict[str, list[float]]) -> dict:
    """``result`` with each part's median and how many runs had it."""
    result["parts_median_s"] = {name: round(statistics.median(v), 2) for name, v in parts.items() if v}
    result["parts_counted"] = {name: len(v) for name, v in parts.items() if v}
    return result


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
        run(
            cli,
            "up",
            "--provider",
            "existing",
            "--kubeconfig",
            cluster.kubeconfig,
            "--engine",
            engine,
            "--engine-install",
            "external",
            "--git-url",
            url,
            "--timeout",
            "300",
        )
        yield cli
    finally:
        engine_proc.stop()


def per_engine(engines: list[str], bench: Callable[[str, object, object], dict]) -> list[dict]:
    """Run ``bench(engine, cluster, git)`` for each engine, each on a fresh cluster."""
    from helpers.gitservers import GitHttpServer
    from testbed import binaries, cluster as testbed_cluster

    # The policy gate renders overlays with kustomize: use the testbed's.
    os.environ["PATH"] = f"{binaries.bin_dir()}{os.pathsep}{os.environ['PATH']}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-testbed-"))
    git = GitHttpServer(workdir / "git")
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


def main(
    description: str, default_runs: int, bench: Callable[[str, int, object, object], dict], what: str, target: str
) -> int:
    """The command line every testbed benchmark shares: --engine, --runs, --output."""
    import json

    args = parse_args(description, lambda parser: parser.add_argument("--runs", type=int, default=default_runs))
    if args is None:
        return 2
    results = per_engine(
        args.engine or ["argocd", "flux"], lambda engine, cluster, git: bench(engine, args.runs, cluster, git)
    )
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['engine']:7} {what} over {r['runs']} runs: median {r['median_s']:.2f} s, "
                f"p95 {r['p95_s']:.2f} s (min {r['min_s']:.2f}, max {r['max_s']:.2f}); "
                f"target {target}: {'met' if r['within_target'] else 'MISSED'}"
            )
            for part, seconds in r.get("parts_median_s", {}).items():
                print(f"        {part}: median {seconds:.2f} s over {r['parts_counted'][part]} runs")
            if "floor" in r:
                f = r["floor"]
                print(
                    f"        floor, {f['what']}: median {f['median_s']:.2f} s, p95 {f['p95_s']:.2f} s; "
                    f"{what} is {r['floor_ratio_median']:.2f}x the floor (median of the pairs)"
                )
    return 0 if all(r["within_target"] for r in results) else 1

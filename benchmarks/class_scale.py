"""A class of N learners on the testbed, per engine: time to create it, memory
growth per learner of the API server (with etcd) and of the engine, and the
time of `class status`.

Each engine gets a fresh testbed cluster (real kube-apiserver, etcd, real
Argo CD or Flux controllers as host processes, kwok nodes) and gitops-lab's
own Git server (manifests/gitserver/server.py) on loopback with per-learner
grants. Memory is the resident set (RSS) of each component's process group,
read from /proc before `class create` and after `class status`; growth per
learner is (after - before) / N. Steady-state CPU (cores used while nothing
is asked of them: the engines' periodic reconciles) is sampled over 60 s
before and after.

    python tests/testbed/build.py            # once
    export PATH="$(python tests/testbed/build.py --print-bin-dir):$PATH"
    python benchmarks/class_scale.py --learners 30
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from testbed_session import parse_args, run

MIB = 2**20
API_SERVER = ("kube-apiserver", "etcd")
# How long steady-state CPU is sampled, before and after the class exists.
IDLE_WINDOW_S = 60


def idle_cpu(procs: dict, names) -> float:
    """Average cores used by ``names`` over IDLE_WINDOW_S while nothing is asked of them."""
    from testbed.processes import group_cpu_seconds

    pids = [procs[n].pid for n in names if n in procs]
    start = sum(group_cpu_seconds(p) for p in pids)
    time.sleep(IDLE_WINDOW_S)
    return round((sum(group_cpu_seconds(p) for p in pids) - start) / IDLE_WINDOW_S, 3)


def bench_engine(engine: str, learners: int, workdir: Path) -> dict:
    from click.testing import CliRunner

    from gitops_lab.cli import main
    from helpers.gitservers import RunningServer, free_port
    from testbed import cluster as testbed_cluster, engines

    cluster = testbed_cluster.start_cluster(workdir / f"cluster-{engine}")
    engine_procs = (engines.start_argocd if engine == "argocd" else engines.start_flux)(cluster)
    root, users = workdir / f"git-{engine}", workdir / f"git-users-{engine}"
    root.mkdir()
    users.write_text("")
    server = RunningServer(root, users, free_port())
    server.start()
    os.environ["GITOPS_LAB_STATE_DIR"] = str(workdir / f"state-{engine}")
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    def rss() -> dict[str, float]:
        both = {**cluster.rss(), **engine_procs.rss()}
        return {name: round(value / MIB, 1) for name, value in sorted(both.items())}

    procs = {**cluster.procs, **engine_procs.procs}
    engine_names = sorted(engine_procs.procs)
    try:
        # the idle window also lets the controllers settle before the memory baseline
        cpu_before = {"apiserver_etcd": idle_cpu(procs, API_SERVER), "engine": idle_cpu(procs, engine_names)}
        before = rss()
        start = time.perf_counter()
        run(
            cli,
            "class",
            "create",
            "--count",
            str(learners),
            "--engine",
            engine,
            "--kubeconfig",
            cluster.kubeconfig,
            "--git-root",
            str(root),
            "--git-base-url",
            f"http://127.0.0.1:{server.port}",
            "--git-auth-file",
            str(users),
            "--timeout",
            "1200",
        )
        create_s = time.perf_counter() - start
        after = rss()
        status_s = []
        for _ in range(3):
            start = time.perf_counter()
            run(cli, "class", "status")
            status_s.append(time.perf_counter() - start)
        after_status = rss()
        cpu_after = {"apiserver_etcd": idle_cpu(procs, API_SERVER), "engine": idle_cpu(procs, engine_names)}
    finally:
        server.stop()
        engine_procs.stop()
        cluster.stop()

    def total(sample: dict[str, float], names) -> float:
        return round(sum(sample.get(n, 0.0) for n in names), 1)

    return {
        "engine": engine,
        "learners": learners,
        "create_s": round(create_s, 1),
        "create_per_learner_s": round(create_s / learners, 2),
        "status_s": [round(s, 2) for s in status_s],
        "rss_before_mib": before,
        "rss_after_create_mib": after,
        "rss_after_status_mib": after_status,
        "apiserver_etcd_mib": [total(before, API_SERVER), total(after_status, API_SERVER)],
        "engine_mib": [total(before, engine_names), total(after_status, engine_names)],
        "apiserver_etcd_per_learner_mib": round(
            (total(after_status, API_SERVER) - total(before, API_SERVER)) / learners, 2
        ),
        "engine_per_learner_mib": round(
            (total(after_status, engine_names) - total(before, engine_names)) / learners, 2
        ),
        "idle_cores_before": cpu_before,
        "idle_cores_after": cpu_after,
    }


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], lambda parser: parser.add_argument("--learners", type=int, default=30))
    if args is None:
        return 2
    from testbed import binaries

    os.environ["PATH"] = f"{binaries.bin_dir()}{os.pathsep}{os.environ['PATH']}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-class-"))
    results = [bench_engine(engine, args.learners, workdir) for engine in args.engine or ["argocd", "flux"]]
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['engine']:7} class of {r['learners']}: created in {r['create_s']:.1f} s "
                f"({r['create_per_learner_s']:.2f} s a learner); `class status` "
                f"{', '.join(f'{s:.1f}' for s in r['status_s'])} s; "
                f"API server+etcd {r['apiserver_etcd_mib'][0]:.0f} -> {r['apiserver_etcd_mib'][1]:.0f} MiB "
                f"(+{r['apiserver_etcd_per_learner_mib']:.2f} MiB a learner); engine "
                f"{r['engine_mib'][0]:.0f} -> {r['engine_mib'][1]:.0f} MiB "
                f"(+{r['engine_per_learner_mib']:.2f} MiB a learner); idle cores, API server+etcd "
                f"{r['idle_cores_before']['apiserver_etcd']:.3f} -> {r['idle_cores_after']['apiserver_etcd']:.3f}, "
                f"engine {r['idle_cores_before']['engine']:.3f} -> {r['idle_cores_after']['engine']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

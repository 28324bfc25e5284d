"""`gitops-lab up` on real kind, per engine, on the kind bed: up time, cluster memory, promote -> served,
each against its floor measured in the same run.

For each engine: first the floor of `up`, `kind create cluster` alone with the
bed's node image (no config, no lab), timed, then deleted; then a fresh
environment, `gitops-lab up --preload` with the classroom's engine manifests
(images preloaded from the bed's dockerd, no registry), timed end to end, and
its ratio to that floor (`--git-server gitea`: with Gitea as the lab's Git
server); then the kind node's memory (`docker stats`) with the lab running; then N promotions of staging between v2 and v1, each timed from
the call until the command returns, which it does only when the engine applied
the commit and the real pods serve the new version; `down`.

The floor of a promotion, in turn with each one (A B A B ...): a copy of
staging's Deployment beside it (its own name and selector, so the engine's
Deployment and the copy never share pods), its pod template's model-version
label changed the way the overlay changes it, applied directly with the
Kubernetes API, timed until the copy has rolled out and each of its pods
answers /version with the new version (through the API server's pod proxy).
The ratio is the median of the pairs (promotion / floor).

    python tests/testbed/build.py && python tests/kindbed/build.py   # once
    python benchmarks/kind_up.py --engine flux --engine argocd --runs 10

Prints one JSON object per engine and a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testbed_session import FLOOR_NAME, DirectApply, summary, with_floor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kindbed.fixtures import KindBed, bed_for_script, wait_for_free_lab_ports  # noqa: E402
from kindbed.layout import node_image_tag  # noqa: E402

FLOOR_CLUSTER = "bench-kind-floor"


def node_memory_mib(bed: KindBed, name: str) -> float:
    """Memory the kind node container uses, as `docker stats` reports it."""
    raw = bed.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", f"{name}-control-plane").strip()
    used = raw.split("/")[0].strip()
    units = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "kB": 1 / 1000, "MB": 1, "GB": 1000, "B": 1 / 2**20}
    for unit, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if used.endswith(unit):
            return round(float(used[: -len(unit)]) * factor, 1)
    raise SystemExit(f"cannot read docker stats: {raw!r}")


def kind_create_alone(bed: KindBed) -> tuple[float, float]:
    """Seconds of `kind create cluster` with the bed's node image and nothing else, and of its delete."""

    def kind(*args: str) -> float:
        start = time.perf_counter()
        proc = subprocess.run(["kind", *args], env=bed.env(), capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"kind {' '.join(args)} failed: {proc.stderr[-2000:]}")
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="kind-floor-") as work:
        kubeconfig = str(Path(work) / "kubeconfig")  # never the user's ~/.kube/config
        kind("delete", "cluster", "--name", FLOOR_CLUSTER, "--kubeconfig", kubeconfig)  # one a crash left
        try:
            create = kind(
                "create", "cluster", "--name", FLOOR_CLUSTER, "--image", node_image_tag(), "--kubeconfig", kubeconfig
            )
        finally:
            delete = kind("delete", "cluster", "--name", FLOOR_CLUSTER, "--kubeconfig", kubeconfig)
    return create, delete


def pods_serve(floor: DirectApply, version: str, seconds: float = 60) -> None:
    """Until every pod of the floor's copy (none terminating) answers /version with ``version`` (bounded)."""
    from gitops_lab.adapters.modelserver import ModelServer, pod_transport
    from gitops_lab.errors import ClusterError

    kube = floor.applier.kube
    end = time.monotonic() + seconds
    seen = "no pod yet"
    while time.monotonic() < end:
        pods = kube.core().list_namespaced_pod(floor.namespace, label_selector="benchmark=floor", _request_timeout=15)
        live = [p.metadata.name for p in pods.items if not p.metadata.deletion_timestamp]
        answers = []
        for pod in live:
            try:
                status, body = ModelServer(pod_transport(kube.api, floor.namespace, pod, 8080), timeout=5).get_json(
                    "version"
                )
            except ClusterError as exc:
                status, body = 0, {"error": exc.message}
            answers.append(body.get("model_version") if status == 200 else f"HTTP {status}")
        if live and all(a == version for a in answers):
            return
        seen = ", ".join(f"{pod}: {a}" for pod, a in zip(live, answers)) or "no pod"
        time.sleep(0.1)
    raise SystemExit(f"the floor's pods did not serve {version} within {seconds:.0f} s ({seen})")


def floor_change(floor: DirectApply, version: str) -> float:
    """Seconds from applying ``version`` to the copy until its pods serve it."""
    start = time.perf_counter()
    floor.change(version=version)
    pods_serve(floor, version)
    return time.perf_counter() - start


def bench_engine(bed: KindBed, engine: str, runs: int, git_server: str = "builtin") -> dict:
    name = f"bench-{engine}" if git_server == "builtin" else f"bench-{engine}-{git_server}"
    wait_for_free_lab_ports()
    kind_create_s, kind_delete_s = kind_create_alone(bed)
    print(f"  {engine}: floor, kind create cluster alone in {kind_create_s:.1f} s", file=sys.stderr)
    start = time.perf_counter()
    bed.gitops_lab(
        "up",
        "--engine",
        engine,
        "--git-server",
        git_server,
        "--preload",
        "--engine-manifests",
        str(bed.manifests),
        "--timeout",
        "900",
        name=name,
    )
    up_s = time.perf_counter() - start
    print(f"  {engine}: up in {up_s:.1f} s", file=sys.stderr)
    time.sleep(30)  # let start-up settle before reading memory
    memory = node_memory_mib(bed, name)
    samples, floors = [], []
    floor = None
    try:
        kubeconfig = bed.home / "state" / name / "kubeconfig"
        floor = DirectApply(str(kubeconfig), "staging", namespace="ml-staging")
        # Off staging's Service (it selects name and instance): the copy's pods take none of its traffic.
        for labels in (
            floor.obj["spec"]["selector"]["matchLabels"],
            floor.obj["spec"]["template"]["metadata"]["labels"],
        ):
            labels["app.kubernetes.io/instance"] = FLOOR_NAME
        floor_change(floor, "v1")  # the copy's first rollout (pods created), not counted
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
            floors.append(floor_change(floor, version))
            print(
                f"  {engine} promotion {i + 1}/{runs} to {version}: {samples[-1]:.2f} s (floor {floors[-1]:.2f} s)",
                file=sys.stderr,
            )
    finally:
        if floor is not None:
            floor.remove()
        bed.gitops_lab("down", name=name, check=False)
    result = summary(engine, samples, target_s=0.0)
    result.pop("target_s")
    result.pop("within_target")
    result = with_floor(
        result, samples, floors, "the same pod template change applied directly, until its pods serve it"
    )
    return {
        "engine": engine,
        "git_server": git_server,
        "up_s": round(up_s, 1),
        "node_memory_mib": memory,
        "promote_served": result,
        "kind_create_s": round(kind_create_s, 1),
        "kind_delete_s": round(kind_delete_s, 1),
        "up_over_kind_create": round(up_s / kind_create_s, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", action="append", choices=["flux", "argocd"])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument(
        "--git-server", choices=["builtin", "gitea"], default="builtin", help="the lab's Git server (`up --git-server`)"
    )
    args = ap.parse_args()
    results = []
    with bed_for_script("kind_up.py") as bed:
        for engine in args.engine or ["flux", "argocd"]:
            results.append(bench_engine(bed, engine, args.runs, args.git_server))
            print(json.dumps(results[-1]))
    print(
        f"{'engine':8} {'server':8} {'up':>8} {'node memory':>12} {'promote p50':>12} {'p95':>8} "
        f"{'kind create':>12} {'up ratio':>9} {'floor p50':>10} {'floor p95':>10} {'ratio':>6}"
    )
    for r in results:
        p = r["promote_served"]
        print(
            f"{r['engine']:8} {r['git_server']:8} {r['up_s']:>7.1f}s {r['node_memory_mib']:>9.0f} MiB {p['median_s']:>11.2f}s "
            f"{p['p95_s']:>7.2f}s {r['kind_create_s']:>11.1f}s {r['up_over_kind_create']:>8.2f}x "
            f"{p['floor']['median_s']:>9.2f}s {p['floor']['p95_s']:>9.2f}s {p['floor_ratio_median']:>5.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

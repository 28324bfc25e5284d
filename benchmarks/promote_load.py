"""Lost `/predict` requests while staging is promoted back and forth on real kind, per engine (the kind bed).

For each engine: a fresh environment, `gitops-lab up --preload` with the
classroom's engine manifests (as benchmarks/kind_up.py does), then, for each
--rate, a steady open-loop load of `/predict` requests at staging's model
server for --seconds, through the path `gitops-lab verify` and the kind e2e
tests use: the API server's service proxy
(``/api/v1/namespaces/ml-staging/services/model-server:http/proxy/predict``),
authenticated with the client certificate of the kubeconfig `up` wrote.
While the load runs, staging is promoted again and again, alternating between
v2 and v1 (`promote --skip-gate model-eval`, as kind_up.py does), each
promotion started only after the one before has returned and --pause has
passed, and only while at least --budget seconds of load remain; `down`.

The load is open-loop: request i is due at i / rate seconds, whatever became
of the ones before, each from its own thread and its own connection (a fresh
TLS connection, so a failure is never a stale pooled connection's), with no
retry and a --request-timeout. A request fails when it gets no answer in time
(timeout), when the connection fails (refused, reset, closed early), when the
answer is not 2xx, or when a 2xx body is not a prediction. Each request
counts for the promotion whose start came last before it was due (those
before the first promotion count as "before"). A watch on staging's model
server pods records when each pod is created, Ready, not Ready, terminating
and deleted, so each failure is shown beside the pod events around it.

    python tests/testbed/build.py && python tests/kindbed/build.py   # once
    python benchmarks/promote_load.py --engine flux --engine argocd --rate 50 --seconds 60

Prints one JSON object per engine and rate and a table. Target (issue 24): no
request lost of 3000 at 50 requests/s, both engines. Exit 1 when a request
was lost or a promotion failed.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kindbed.fixtures import KindBed, Run, bed_for_script, wait_for_free_lab_ports  # noqa: E402

TARGET_RATE = 50
TARGET_REQUESTS = 3000
NAMESPACE = {"staging": "ml-staging"}
POD_SELECTOR = "app.kubernetes.io/name=model-server"
BODY = json.dumps(
    {"instances": [{"temperature_c": 63.2, "vibration_mm_s": 5.05, "pressure_bar": 5.54, "rpm": 1417.0}]}
).encode()


# -- the client: the API server's service proxy, stdlib only ------------------------------------------


class ServiceProxy:
    """POST /predict to a namespace's model-server Service through the API server's proxy, with the
    kubeconfig's client certificate; one fresh connection per request."""

    def __init__(self, kubeconfig: Path, context: str, namespace: str, workdir: Path, api_key: str | None) -> None:
        import yaml

        from gitops_lab.adapters.modelserver import API_KEY_HEADER

        config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))

        def named(kind: str, name: str) -> dict:
            return next(item for item in config[kind] if item["name"] == name)

        ctx = named("contexts", context)["context"]
        cluster = named("clusters", ctx["cluster"])["cluster"]
        user = named("users", ctx["user"])["user"]
        files = {}
        for key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
            source = cluster if key.startswith("certificate-authority") else user
            path = workdir / key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(base64.b64decode(source[key]))
            files[key] = str(path)
        self.context = ssl.create_default_context(cafile=files["certificate-authority-data"])
        self.context.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
        server = urlsplit(cluster["server"])
        self.host, self.port = server.hostname, server.port or 443
        self.path = f"/api/v1/namespaces/{namespace}/services/model-server:http/proxy/predict"
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:  # the namespace's Secret model-api-key: the server requires it on /predict
            self.headers[API_KEY_HEADER] = api_key

    def predict(self, timeout: float) -> tuple[str | None, str | None]:
        """(the model version that answered, None) or (None, why the request failed)."""
        start = time.perf_counter()
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
        try:
            conn.request("POST", self.path, body=BODY, headers=self.headers)
            response = conn.getresponse()
            data = response.read()
        except (TimeoutError, socket.timeout):
            return None, "timeout"
        except (OSError, http.client.HTTPException) as exc:
            return None, f"connection: {type(exc).__name__}: {exc}"[:200]
        finally:
            conn.close()
        if time.perf_counter() - start > timeout:
            return None, "timeout"  # the socket timeout bounds each read, not the whole request
        if not 200 <= response.status <= 299:
            excerpt = " ".join(data.decode("utf-8", "replace").split())[:160]
            return None, f"http {response.status}: {excerpt}"
        try:
            answer = json.loads(data)
            if answer["predictions"]:
                return str(answer["model_version"]), None
        except (ValueError, KeyError, TypeError):
            pass
        return None, f"http {response.status}, not a prediction: {data[:120]!r}"


# -- the load: open loop, one thread per request in flight ---------------------------------------------


@dataclass
class Request:
    due_s: float  # since the load started
    lag_s: float  # sent this long after it was due
    seconds: float
    version: str | None
    error: str | None


class OpenLoop:
    """``rate`` requests a second for ``seconds``, each due at i / rate whatever the others do."""

    def __init__(self, send, rate: float, seconds: float, timeout: float) -> None:
        self.send, self.rate, self.timeout = send, rate, timeout
        self.count = int(round(rate * seconds))
        self.results: list[Request | None] = [None] * self.count
        # enough threads for every request that can be in flight at once (each lasts at most ``timeout``)
        self.pool = ThreadPoolExecutor(max_workers=min(512, int(rate * timeout * 1.5) + 8))
        self.stop = threading.Event()
        self.clock = threading.Thread(target=self._schedule, name="load-clock", daemon=True)
        self.t0 = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.clock.start()

    def _schedule(self) -> None:
        for i in range(self.count):
            delay = i / self.rate - self.now()
            if delay > 0:
                self.stop.wait(delay)
            if self.stop.is_set():
                return
            try:
                self.pool.submit(self._one, i)
            except RuntimeError:  # the pool was shut down: the benchmark is ending
                return

    def _one(self, i: int) -> None:
        sent = self.now()
        version, error = self.send(self.timeout)
        self.results[i] = Request(i / self.rate, sent - i / self.rate, self.now() - sent, version, error)

    def finish(self) -> list[Request]:
        """Wait (bounded) for the last request due and every answer; one not back in time is a failure."""
        self.clock.join(timeout=self.count / self.rate - self.now() + 10)
        self.stop.set()
        end = time.monotonic() + 3 * self.timeout + 10
        while any(r is None for r in self.results) and time.monotonic() < end:
            time.sleep(0.1)
        self.pool.shutdown(wait=False, cancel_futures=True)
        return [
            r if r is not None else Request(i / self.rate, 0.0, 0.0, None, "no answer before the benchmark's end")
            for i, r in enumerate(self.results)
        ]


# -- the pods: what happened around a failure ----------------------------------------------------------


@dataclass
class PodWatch:
    """Staging's model server pods, watched: (seconds since the load started, pod, what happened)."""

    api: object
    namespace: str
    clock: OpenLoop
    events: list[tuple[float, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.seen: dict[str, tuple] = {}
        self.thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=20)

    def _see(self, kind: str, pod) -> None:
        name = pod.metadata.name
        if kind == "DELETED":
            if name in self.seen:
                self.events.append((self.clock.now(), name, "deleted"))
                del self.seen[name]
            return
        conditions = {c.type: c.status for c in (pod.status.conditions or [])}
        state = (
            (pod.metadata.labels or {}).get("gitops-lab.io/model-version"),
            conditions.get("Ready") == "True",
            pod.metadata.deletion_timestamp is not None,
        )
        before = self.seen.get(name)
        self.seen[name] = state
        if before is None:
            self.events.append((self.clock.now(), name, f"created ({state[0]})" + (", Ready" if state[1] else "")))
            return
        if state[1] != before[1]:
            self.events.append((self.clock.now(), name, "Ready" if state[1] else "not Ready"))
        if state[2] and not before[2]:
            self.events.append((self.clock.now(), name, "terminating (its preStop sleep, then SIGTERM)"))

    def _run(self) -> None:
        from kubernetes import client, watch
        from kubernetes.client import ApiException

        core = client.CoreV1Api(self.api)
        version = None
        while not self.stop.is_set():
            try:
                if version is None:
                    listed = core.list_namespaced_pod(self.namespace, label_selector=POD_SELECTOR, _request_timeout=15)
                    for pod in listed.items:
                        self._see("LISTED", pod)
                    version = listed.metadata.resource_version
                stream = watch.Watch().stream(
                    core.list_namespaced_pod,
                    self.namespace,
                    label_selector=POD_SELECTOR,
                    resource_version=version,
                    timeout_seconds=5,
                    _request_timeout=15,
                )
                for event in stream:
                    self._see(event["type"], event["object"])
                    version = event["object"].metadata.resource_version
                    if self.stop.is_set():
                        break
            except ApiException as exc:
                if exc.status != 410:
                    self.errors.append(f"{exc.status} {exc.reason}")
                version = None  # expired (or failed): list again
                self.stop.wait(0.5)
            except Exception as exc:  # a watch hiccup must not end the benchmark
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                version = None
                self.stop.wait(0.5)


# -- one engine --------------------------------------------------------------------------------------


def first_answer(proxy: ServiceProxy, seconds: float = 60) -> str:
    """The version staging serves, once it answers /predict (bounded)."""
    end = time.monotonic() + seconds
    while True:
        version, error = proxy.predict(5)
        if version:
            return version
        if time.monotonic() > end:
            raise SystemExit(f"promote_load.py: staging's model server does not answer /predict: {error}")
        time.sleep(1)


def around(events: list[tuple[float, str, str]], at: float) -> str:
    """The pod events just before and after ``at``, for a failure's line."""
    before = [e for e in events if e[0] <= at][-1:]
    after = [e for e in events if e[0] > at][:1]
    parts = [f"{at - t:.2f} s after {pod} {what}" for t, pod, what in before]
    parts += [f"{t - at:.2f} s before {pod} {what}" for t, pod, what in after]
    return "; ".join(parts) or "no pod event"


def load_through_promotions(bed: KindBed, name: str, proxy: ServiceProxy, args, rate: float) -> dict:
    load = OpenLoop(proxy.predict, rate, args.seconds, args.request_timeout)
    pods = PodWatch(bed.api(name), NAMESPACE[args.env], load)
    version = first_answer(proxy)
    promotions: list[dict] = []
    problem = None
    load.start()
    pods.start()
    try:
        load.stop.wait(min(2.0, args.seconds / 10))
        while not args.promotions or len(promotions) < args.promotions:
            if load.now() + args.budget > args.seconds:
                break
            version = "v1" if version == "v2" else "v2"
            start = load.now()
            # Going back to v1 would be refused by model-eval's regression rule; skip it (recorded).
            try:
                run = bed.gitops_lab(
                    "promote",
                    "--to",
                    args.env,
                    "--version",
                    version,
                    "--skip-gate",
                    "model-eval",
                    "--timeout",
                    "120",
                    name=name,
                    timeout=180,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                run = Run(-1, "", "the promote command did not end within 180 s (its --timeout was 120 s)")
            promotions.append(
                {"version": version, "start_s": round(start, 2), "served_s": round(load.now() - start, 2)}
            )
            print(
                f"  {name} {rate:g}/s promotion {len(promotions)} to {version}: {promotions[-1]['served_s']:.2f} s",
                file=sys.stderr,
            )
            if run.returncode != 0:
                problem = f"promotion {len(promotions)} to {version} exited {run.returncode}: {run.stderr[-1500:]}"
                break
            load.stop.wait(args.pause)
    finally:
        results = load.finish()
        pods.finish()
    return tally(name, rate, args, results, promotions, pods, problem)


def tally(name, rate, args, results: list[Request], promotions: list[dict], pods: PodWatch, problem) -> dict:
    starts = [p["start_s"] for p in promotions]
    windows: list[dict] = [{"promotion": "before", "sent": 0, "failed": 0, "served": {}, "failures": []}]
    for i, p in enumerate(promotions, 1):
        windows.append({"promotion": i, **p, "sent": 0, "failed": 0, "served": {}, "failures": []})
    kinds: dict[str, int] = {}
    for r in results:
        window = windows[sum(1 for s in starts if s <= r.due_s)]
        window["sent"] += 1
        if r.error:
            window["failed"] += 1
            kind = r.error.split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
            since = f"{r.due_s - window['start_s']:.2f} s into the promotion" if "start_s" in window else "before"
            window["failures"].append(
                {"due_s": round(r.due_s, 2), "when": since, "error": r.error, "pods": around(pods.events, r.due_s)}
            )
        elif r.version:
            window["served"][r.version] = window["served"].get(r.version, 0) + 1
    for w in windows:
        start, end = w.get("start_s"), None
        if start is not None:
            later = [s for s in starts if s > start]
            end = later[0] if later else args.seconds
            w["pod_events"] = [f"{t:.2f} s {pod} {what}" for t, pod, what in pods.events if start <= t < end]
    failed = sum(w["failed"] for w in windows)
    seconds = sorted(r.seconds for r in results if not r.error)
    lags = [r.lag_s for r in results]
    return {
        "engine": name.removeprefix("load-"),
        "rate_per_s": rate,
        "seconds": args.seconds,
        "request_timeout_s": args.request_timeout,
        "environment": args.env,
        "sent": len(results),
        "failed": failed,
        "failures_by_kind": kinds,
        "promotions": len(promotions),
        "promotion_failed": problem,
        "promote_served_median_s": round(statistics.median(p["served_s"] for p in promotions), 2)
        if promotions
        else None,
        "answer_median_s": round(statistics.median(seconds), 3) if seconds else None,
        "answer_p99_s": round(seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))], 3) if seconds else None,
        "sent_late_over_0_1_s": sum(1 for lag in lags if lag > 0.1),
        "max_send_lag_s": round(max(lags), 3) if lags else None,
        "within_target": failed == 0 and problem is None,
        "target": f"0 lost of {TARGET_REQUESTS} at {TARGET_RATE}/s",
        "target_run": rate >= TARGET_RATE and len(results) >= TARGET_REQUESTS,
        "pod_watch_errors": pods.errors,
        "windows": windows,
    }


def bench_engine(bed: KindBed, engine: str, args) -> list[dict]:
    name = f"load-{engine}"
    wait_for_free_lab_ports()
    start = time.perf_counter()
    bed.gitops_lab(
        "up", "--engine", engine, "--preload", "--engine-manifests", str(bed.manifests), "--timeout", "900", name=name
    )
    print(f"  {engine}: up in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="promote-load-") as work:
            kubeconfig = bed.home / "state" / name / "kubeconfig"
            from gitops_lab.adapters.modelserver import cluster_api_key

            api_key = cluster_api_key(bed.api(name), NAMESPACE[args.env])
            proxy = ServiceProxy(kubeconfig, f"kind-{name}", NAMESPACE[args.env], Path(work), api_key)
            for rate in args.rate or [TARGET_RATE]:
                results.append(load_through_promotions(bed, name, proxy, args, rate))
                print(json.dumps(results[-1]))
    finally:
        bed.gitops_lab("down", name=name, check=False)
    return results


def table(results: list[dict]) -> None:
    print(f"{'engine':8} {'rate':>6} {'sent':>6} {'failed':>7} {'promotions':>11} {'lost per promotion':<24} target")
    for r in results:
        per = ",".join(str(w["failed"]) for w in r["windows"][1:]) or "-"
        verdict = "met" if r["within_target"] else "MISSED"
        if not r["target_run"]:
            verdict += f" (not the target's run: {TARGET_REQUESTS} at {TARGET_RATE}/s)"
        print(
            f"{r['engine']:8} {r['rate_per_s']:>5g}/s {r['sent']:>6} {r['failed']:>7} {r['promotions']:>11} {per:<24} {verdict}"
        )
        for w in r["windows"]:
            for f in w["failures"]:
                print(f"         promotion {w['promotion']}, {f['when']}: {f['error']} ({f['pods']})")
        if r["promotion_failed"]:
            print(f"         {r['promotion_failed']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", action="append", choices=["flux", "argocd"])
    ap.add_argument("--rate", action="append", type=float, help="requests a second (repeat for more rates; default 50)")
    ap.add_argument("--seconds", type=float, default=60, help="how long each load lasts (default 60)")
    ap.add_argument("--request-timeout", type=float, default=2.0, help="each request's bound (default 2 s)")
    ap.add_argument("--env", choices=sorted(NAMESPACE), default="staging")
    ap.add_argument("--promotions", type=int, default=0, help="at most this many per load (default: as many as fit)")
    ap.add_argument("--pause", type=float, default=5.0, help="seconds between a promotion's return and the next")
    ap.add_argument("--budget", type=float, default=15.0, help="start no promotion with less load than this left")
    args = ap.parse_args()
    results = []
    with bed_for_script("promote_load.py") as bed:
        for engine in args.engine or ["flux", "argocd"]:
            results.extend(bench_engine(bed, engine, args))
    table(results)
    return 0 if all(r["within_target"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

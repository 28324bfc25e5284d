"""Post-deploy verification: check what an environment really serves.

Six checks, each a verdict with the evidence it rests on:

- ``version``: every serving pod's /version names the expected model version;
- ``pods``: every pod is ready, has restarted at most ``max_restarts`` times and
  carries the version on its labels;
- ``accuracy``: a labelled sample sent to /predict, through the Service as
  clients reach it, scores within ``accuracy_tolerance`` of the accuracy the
  artifact records. The sample is the held-out set, or for an environment whose
  ``traffic`` says so, requests that environment received (prod's pumps run
  hotter than the held-out set's: a model can pass everywhere else and fail there);
- ``error-rate`` and ``latency-p95``: from each pod's /metrics, before and after
  the sample plus a short bounded load of one-row requests;
- ``input-drift``: the inputs the serving pods received since they started
  (their /metrics histograms, the check's own rows included) against the
  training reference, by the population stability index of each feature. Too
  few rows: skipped, saying so. Drift warns, or fails with ``on_drift: fail``.

The model server is reached through a ``VerifyTarget``: the API server's proxy
(``kube_target``) or a URL (``url_target``, a local process in unit tests).
Thresholds come from gates.yaml's ``verification`` section.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_lab.adapters.metrics import Snapshot, histogram_quantile, input_histograms, request_counts
from gitops_lab.adapters.modelserver import (
    ModelServer,
    UrlTransport,
    cluster_api_key,
    pod_transport,
    service_transport,
)
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import VERSION_LABEL, RepoLayout, artifact_fix, checked_artifact
from gitops_lab.adapters.repo.pushed import fetch_pushed
from gitops_lab.adapters.repo.snapshot import RepoSnapshot
from gitops_lab.adapters.repo.trailers import VERIFY_PREFIX
from gitops_lab.deadline import Deadline
from gitops_lab.errors import ClusterError, NotFound, VerificationFailed, WaitTimeout
from gitops_lab.gates.config import config_at
from gitops_lab.gates.data_quality import psi_of_shares
from gitops_lab.gates.result import GateResult, check_line, failures
from gitops_lab.gates.runner import gate_trailers
from gitops_lab.gates.verification import InputDriftSettings, VerificationSettings
from gitops_lab.kube import retry
from gitops_lab.model import dataset
from gitops_lab.model.dataset import held_out_rows, prod_traffic_rows
from gitops_lab.textfiles import parse_json_object
from gitops_lab.reporter import Reporter

CHECKS = ("version", "pods", "accuracy", "error-rate", "latency-p95", "input-drift")
SAMPLE_SEED = 12
BATCH = 25
PREDICT = "/predict"
LABEL = "failure"


@dataclass(frozen=True)
class PodState:
    name: str
    ready: bool
    restarts: int
    version: str | None
    port: int


@dataclass
class VerifyTarget:
    """Where the model server of one environment is reached."""

    env: str
    namespace: str
    service: ModelServer
    # The serving pods, and a server per pod for /version and /metrics; None for
    # a URL target, where the one server is all there is.
    pods: Callable[[], list[PodState]] | None = None
    pod_server: Callable[[PodState], ModelServer] | None = None

    def servers(self, pods: list[PodState] | None) -> list[tuple[str, ModelServer]]:
        if pods is None or self.pod_server is None:
            return [(self.service.where, self.service)]
        return [(pod.name, self.pod_server(pod)) for pod in pods]


def kube_target(kube: Any, env: str, namespace: str) -> VerifyTarget:
    """The environment's Service and pods, through the API server's proxy; /predict carries the
    API key of the namespace's Secret model-api-key when it has one."""
    api_key = cluster_api_key(kube.api, namespace)

    def pods() -> list[PodState]:
        found = retry.call(
            lambda: kube.core().list_namespaced_pod(
                namespace, label_selector="app.kubernetes.io/name=model-server", _request_timeout=15
            )
        ).items
        states = []
        for pod in sorted(found, key=lambda p: p.metadata.name):
            if pod.metadata.deletion_timestamp:
                continue  # an old pod on its way out serves no new traffic
            conditions = {c.type: c.status for c in (pod.status.conditions or [])}
            port = next(
                (p.container_port for c in pod.spec.containers for p in (c.ports or []) if p.name == "http"), 8080
            )
            states.append(
                PodState(
                    name=pod.metadata.name,
                    ready=conditions.get("Ready") == "True",
                    restarts=sum(s.restart_count for s in (pod.status.container_statuses or [])),
                    version=(pod.metadata.labels or {}).get(VERSION_LABEL),
                    port=port,
                )
            )
        return states

    return VerifyTarget(
        env,
        namespace,
        ModelServer(service_transport(kube.api, namespace), api_key=api_key),
        pods=pods,
        pod_server=lambda pod: ModelServer(pod_transport(kube.api, namespace, pod.name, pod.port), api_key=api_key),
    )


def pods_answer(kube: Any, namespace: str) -> str | None:
    """None when the model server in ``namespace`` answers /healthz through the
    API server's proxy; else why not (simulated pods, as on the testbed, never do)."""
    try:
        status, _ = service_transport(kube.api, namespace).send("GET", "healthz", None, 10)
    except ClusterError as exc:
        return exc.message
    return None if status == 200 else f"the model server in {namespace} answered /healthz with HTTP {status}"


def url_target(env: str, url: str, api_key: str | None = None) -> VerifyTarget:
    """A model server at a URL; the pods check is skipped (there is no pod to look at)."""
    return VerifyTarget(env, url, ModelServer(UrlTransport(url), api_key=api_key))


@dataclass
class VerificationReport:
    environment: str
    where: str
    version: str
    checks: list[GateResult]
    settings: VerificationSettings
    # The evidence of the input-drift check, one entry per feature (empty when it had none).
    input_drift: list["FeatureDrift"] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[GateResult]:
        return [c for c in self.checks if not c.passed]

    def trailers(self) -> list[tuple[str, str]]:
        """``Verify-Accuracy: fail (live accuracy 0.4828 ...)``, one per check: the evidence for a commit."""
        return gate_trailers(self.checks, prefix=VERIFY_PREFIX)

    def failure(self, what: str = "", fix: str = "") -> VerificationFailed:
        """The error naming every failed check; ``what`` says what was done about it."""
        names = ", ".join(f"{c.name} ({c.summary})" for c in self.failed)
        return VerificationFailed(
            f"{self.environment} serving {self.version} failed verification: {names}{what}",
            fix=fix or f"see `gitops-lab verify --env {self.environment}` for every check",
            results=self.checks,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "where": self.where,
            "version": self.version,
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "input_drift": [{**asdict(d), "drifted": d.drifted} for d in self.input_drift],
            "settings": self.settings.to_dict(),
        }


def verify(
    target: VerifyTarget,
    version: str,
    artifact: dict[str, Any],
    settings: VerificationSettings,
    deadline: Deadline,
    reporter: Reporter,
) -> VerificationReport:
    """Run every check against ``target``, which should serve ``version`` (its ``artifact`` from Git)."""
    with reporter.step(f"Verifying what {target.env} serves (expecting {version})") as step:
        pods = target.pods() if target.pods else None
        servers = target.servers([p for p in pods if p.ready] if pods is not None else None)
        checks = [_version_check(servers, version)]
        checks.append(
            _pods_check(pods, version, settings)
            if pods is not None
            else GateResult("pods", True, f"skipped: {target.service.where} is not a pod", skipped=True)
        )
        before = _scrape(servers)
        traffic = settings.traffic_for(target.env)
        step.update(f"sending {settings.sample_size} rows of {traffic} and {settings.load_requests} requests")
        checks.append(_accuracy_check(target.service, version, artifact, settings, traffic, deadline))
        client_errors = _load(target.service, settings, traffic, deadline)
        after = _scrape(servers)
        checks += _metrics_checks(after.minus(before), client_errors, settings)
        drift = feature_drift(after, settings.input_drift.psi_max)
        checks.append(input_drift_check(drift, settings.input_drift))
        report = VerificationReport(target.env, target.service.where, version, checks, settings, drift)
        if report.passed:
            step.done("all checks pass")
        else:
            step.fail("failed: " + ", ".join(c.name for c in report.failed))
    return report


def require_passed(report: VerificationReport) -> VerificationReport:
    """Raise VerificationFailed (exit code 4) naming every failed check."""
    if not report.passed:
        raise report.failure(fix="the table on stdout has each check's evidence (`--output json` for all of it)")
    return report


def labelled_rows(traffic: str) -> list[dict[str, float]]:
    """Every labelled row of ``traffic`` (gates.verification.TRAFFIC)."""
    return prod_traffic_rows() if traffic == "prod-traffic" else held_out_rows()


def labelled_sample(size: int, traffic: str = "held-out") -> list[dict[str, float]]:
    """``size`` labelled rows of ``traffic`` (the clean held-out split: 116), the same ones every run."""
    rows = labelled_rows(traffic)
    if size >= len(rows):
        return rows
    chosen = sorted(random.Random(SAMPLE_SEED).sample(range(len(rows)), size))
    return [rows[i] for i in chosen]


def _features(row: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in row.items() if k != LABEL}


def _version_check(servers: list[tuple[str, ModelServer]], version: str) -> GateResult:
    details = []
    for name, server in servers:
        try:
            status, body = server.get_json("version")
        except ClusterError as exc:
            details.append(check_line(False, f"{name}: {exc.message}"))
            continue
        served = body.get("model_version")
        ok = status == 200 and served == version and body.get("loaded") is True
        why = f"serves {served}" if status == 200 else f"/version answered HTTP {status}: {body.get('error', '')}"
        details.append(check_line(ok, f"{name}: {why}"))
    if not servers:
        details.append(check_line(False, "no ready pod to ask"))
    bad = failures(details)
    summary = (
        f"{len(servers)} of {len(servers)} serve {version}"
        if not bad
        else f"{len(bad)} of {max(len(servers), 1)} do not serve {version}: {bad[0]}"
    )
    return GateResult("version", not bad, summary, details)


def _pods_check(pods: list[PodState], version: str, settings: VerificationSettings) -> GateResult:
    details = [check_line(bool(pods), f"{len(pods)} serving pod(s)")]
    for pod in pods:
        details.append(check_line(pod.ready, f"{pod.name}: {'ready' if pod.ready else 'not ready'}"))
        details.append(
            check_line(
                pod.restarts <= settings.max_restarts,
                f"{pod.name}: {pod.restarts} restart(s) (max {settings.max_restarts})",
            )
        )
        details.append(check_line(pod.version == version, f"{pod.name}: labelled {pod.version}"))
    bad = failures(details)
    ready = sum(p.ready for p in pods)
    restarts = sum(p.restarts for p in pods)
    summary = f"{ready}/{len(pods)} ready, {restarts} restart(s)" + (f": {bad[0]}" if bad else "")
    return GateResult("pods", not bad, summary, details)


def _accuracy_check(
    service: ModelServer,
    version: str,
    artifact: dict[str, Any],
    settings: VerificationSettings,
    traffic: str,
    deadline: Deadline,
) -> GateResult:
    metric = artifact.get("evaluation", {}).get("metric", "accuracy")
    recorded = float(artifact.get("metrics", {}).get(metric, 0.0))
    floor = round(recorded - settings.accuracy_tolerance, 4)
    rows = labelled_sample(settings.sample_size, traffic)
    correct, answered, details = 0, 0, []
    for start in range(0, len(rows), BATCH):
        _check_time(deadline, "the accuracy sample")
        batch = rows[start : start + BATCH]
        try:
            status, body = service.predict([_features(r) for r in batch])
        except ClusterError as exc:
            details.append(check_line(False, f"rows {start}-{start + len(batch) - 1}: {exc.message}"))
            continue
        if status != 200 or len(body.get("predictions", [])) != len(batch):
            details.append(
                check_line(
                    False, f"rows {start}-{start + len(batch) - 1}: HTTP {status} {body.get('error', '')}".rstrip()
                )
            )
            continue
        if body.get("model_version") != version:
            details.append(
                check_line(
                    False,
                    f"rows {start}-{start + len(batch) - 1}: answered by {body.get('model_version')}, not {version}",
                )
            )
        answered += len(batch)
        correct += sum(int(y == int(r[LABEL])) for y, r in zip(body["predictions"], batch))
    live = round(correct / answered, 4) if answered else 0.0
    ok_accuracy = answered == len(rows) and live >= floor
    details.insert(
        0,
        check_line(
            ok_accuracy,
            f"live {metric} {live:.4f} on {answered} of {len(rows)} rows of "
            f"{traffic}; the artifact records {recorded:.4f}, tolerance "
            f"{settings.accuracy_tolerance}",
        ),
    )
    bad = failures(details)
    relation = ">=" if live >= floor else "<"
    summary = (
        f"live {metric} {live:.4f} {relation} {floor:.4f} (recorded {recorded:.4f} - {settings.accuracy_tolerance})"
    )
    if bad and ok_accuracy:
        summary += f"; {bad[0]}"
    if answered < len(rows):
        summary += f"; {len(rows) - answered} row(s) got no answer"
    passed = not bad
    return GateResult("accuracy", passed, summary, details)


def _load(service: ModelServer, settings: VerificationSettings, traffic: str, deadline: Deadline) -> list[str]:
    """``load_requests`` one-row predictions, ``load_concurrency`` at a time; the client's errors."""
    rows = labelled_rows(traffic)

    def one(index: int) -> str | None:
        if deadline.expired:
            return "not sent: the deadline passed"
        try:
            status, body = service.predict([_features(rows[index % len(rows)])])
        except ClusterError as exc:
            return exc.message
        return None if status == 200 else f"HTTP {status}: {body.get('error', '')}".rstrip(": ")

    with ThreadPoolExecutor(max_workers=settings.load_concurrency) as pool:
        outcomes = list(pool.map(one, range(settings.load_requests)))
    _check_time(deadline, "the load")
    return [o for o in outcomes if o]


def _scrape(servers: list[tuple[str, ModelServer]]) -> Snapshot:
    total = Snapshot()
    for name, server in servers:
        total = total.plus(Snapshot.parse(server.metrics_text(), f"/metrics of {name}"))
    return total


def _metrics_checks(window: Snapshot, client_errors: list[str], settings: VerificationSettings) -> list[GateResult]:
    counts = request_counts(window, PREDICT)
    total = sum(counts.values())
    failed = sum(v for code, v in counts.items() if not code.startswith("2"))
    rate = failed / total if total else 1.0
    by_code = ", ".join(f"{code}: {int(v)}" for code, v in sorted(counts.items())) or "none"
    details = [
        check_line(total > 0, f"{int(total)} {PREDICT} request(s) in /metrics during the check ({by_code})"),
        check_line(
            rate <= settings.max_error_rate, f"server error rate {rate:.2%} (max {settings.max_error_rate:.2%})"
        ),
        check_line(
            not client_errors,
            f"{len(client_errors)} request(s) of the load failed at the client"
            + (f", first: {client_errors[0]}" if client_errors else ""),
        ),
    ]
    error_rate = GateResult(
        "error-rate",
        not failures(details),
        f"{rate:.2%} of {int(total)} {PREDICT} requests failed (max {settings.max_error_rate:.2%})"
        + (f"; {len(client_errors)} failed at the client" if client_errors else ""),
        details,
    )
    p95 = histogram_quantile(0.95, window, PREDICT)
    limit = settings.max_latency_p95_seconds
    if p95 is None:
        latency = GateResult(
            "latency-p95",
            False,
            f"no {PREDICT} latency in /metrics",
            [check_line(False, f"the histogram has no {PREDICT} observations in the window")],
        )
    else:
        ok = p95 <= limit
        latency = GateResult(
            "latency-p95",
            ok,
            f"p95 {p95 * 1000:.1f} ms {'<=' if ok else '>'} {limit * 1000:.0f} ms",
            [check_line(ok, f"p95 of {int(total)} {PREDICT} requests {p95:.4f}s (max {limit}s)")],
        )
    return [error_rate, latency]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's live inputs against the training reference: the evidence of input drift."""

    feature: str
    psi: float
    psi_max: float
    rows: int

    @property
    def drifted(self) -> bool:
        return self.psi > self.psi_max


def feature_drift(scrape: Snapshot, psi_max: float) -> list[FeatureDrift]:
    """PSI of each feature's received values (the input histograms of ``scrape``,
    summed over pods) against the clean reference dataset, over the same bins."""
    reference = _reference_rows()
    found = []
    for feature, (edges, counts) in sorted(input_histograms(scrape).items()):
        if feature not in reference[0]:
            continue  # a feature the reference dataset does not have: nothing to compare with
        rows = int(sum(counts))
        ref_counts = [0] * len(counts)
        for row in reference:
            # Bins are (lower, upper], as Prometheus' le buckets count them.
            ref_counts[next((i for i, edge in enumerate(edges) if row[feature] <= edge), len(edges))] += 1
        expected = [c / len(reference) for c in ref_counts]
        actual = [c / rows for c in counts] if rows else [0.0] * len(counts)
        found.append(FeatureDrift(feature, round(psi_of_shares(expected, actual), 4), psi_max, rows))
    return found


def _reference_rows() -> list[dict[str, float]]:
    """The training reference: the clean dataset, as the data-quality gate compares training data with."""
    return dataset.prepare(dataset.read_raw()).rows


def input_drift_check(drift: list[FeatureDrift], settings: InputDriftSettings) -> GateResult:
    """The ``input-drift`` verdict: skipped with too few rows, else pass, or drift (warn or fail)."""
    name = "input-drift"
    if not drift:
        return GateResult(
            name,
            True,
            "skipped: /metrics has no input histograms (model_server_input_feature): the server predates them",
            skipped=True,
        )
    rows = min(d.rows for d in drift)
    if rows < settings.min_rows:
        return GateResult(
            name,
            True,
            f"skipped: {rows} row(s) received, fewer than min_rows {settings.min_rows}: too few to judge drift",
            [f"warn: {d.feature}: PSI {d.psi:.2f} over only {d.rows} row(s), not judged" for d in drift],
            skipped=True,
        )
    drifted = [d for d in drift if d.drifted]
    level = "fail" if settings.on_drift == "fail" else "warn"
    details = [
        f"{level if d.drifted else 'pass'}: {d.feature}: PSI {d.psi:.2f} "
        f"{'>' if d.drifted else '<='} {d.psi_max} over {d.rows} rows"
        for d in drift
    ]
    if not drifted:
        worst = max(drift, key=lambda d: d.psi)
        return GateResult(
            name,
            True,
            f"no drift: max PSI {worst.psi:.2f} ({worst.feature}) <= {worst.psi_max} over {rows} rows",
            details,
        )
    named = ", ".join(f"{d.feature} PSI {d.psi:.2f}" for d in sorted(drifted, key=lambda d: -d.psi))
    summary = f"input drift: {named} > {settings.psi_max} over {rows} rows"
    if level == "warn":
        summary += "; a warning (on_drift: warn)"
    return GateResult(name, level == "warn", summary, details)


def _check_time(deadline: Deadline, what: str) -> None:
    if deadline.expired:
        raise WaitTimeout(
            f"verification ran out of time ({deadline.describe()}) during {what}",
            fix="raise --timeout, or lower sample_size and load_requests in gates.yaml's verification",
        )


# --------------------------------------------------------------------------- #
# What to expect: read from Git as pushed
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Expected:
    version: str
    artifact: dict[str, Any]
    settings: VerificationSettings
    commit: str


def expected_from_git(repo_path: Path, env: str, version: str | None = None, pushed: bool = True) -> Expected:
    """The version ``env`` should serve, its artifact and the verification settings,
    as pushed (``origin/main`` after a fetch; HEAD without a remote, or when not ``pushed``)."""
    git = Git(repo_path)
    RepoLayout(repo_path).check_env(env)
    snapshot = RepoSnapshot(git, fetch_pushed(git) if pushed else "HEAD")
    commit = snapshot.commit or ""
    want = version or snapshot.model_version(env)
    rel = f"base/models/{want}.json"
    where, fix = f"the model artifact {rel} at {commit[:7]}", artifact_fix(rel)
    text = snapshot.text(rel, "model artifact", fix=fix)
    if text is None:
        raise NotFound(
            f"model version {want!r} has no artifact at {snapshot.ref}", fix="name a version the repository ships"
        )
    config = config_at(snapshot)
    artifact = checked_artifact(parse_json_object(text, where, fix), where, fix)
    return Expected(want, artifact, VerificationSettings.from_section(config.verification), commit)

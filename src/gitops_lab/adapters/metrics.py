"""Read the model server's /metrics (Prometheus text format) with prometheus_client's parser.

A ``Snapshot`` is every sample of one scrape. Verification takes one before and
one after its load, per pod, and reads counters and the latency histogram from
the difference, so requests from before the check (probes, other traffic the
pod served) do not count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gitops_lab.errors import ClusterError

REQUESTS = "model_server_requests_total"
DURATION_BUCKET = "model_server_request_duration_seconds_bucket"
INPUT_BUCKET = "model_server_input_feature_bucket"

Key = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Snapshot:
    samples: dict[Key, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, where: str = "/metrics") -> "Snapshot":
        from prometheus_client.parser import text_string_to_metric_families

        samples: dict[Key, float] = {}
        try:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
        except (ValueError, TypeError, IndexError) as exc:
            raise ClusterError(
                f"{where} is not in the Prometheus text format: {exc}",
                fix="check that the model server is the one the lab ships",
            ) from exc
        return cls(samples)

    def minus(self, before: "Snapshot") -> "Snapshot":
        """What happened between ``before`` and this scrape; a counter that went
        down was reset (the process restarted), so its whole value counts."""
        diff = {}
        for key, value in self.samples.items():
            old = before.samples.get(key, 0.0)
            diff[key] = value - old if value >= old else value
        return Snapshot(diff)

    def plus(self, other: "Snapshot") -> "Snapshot":
        merged = dict(self.samples)
        for key, value in other.samples.items():
            merged[key] = merged.get(key, 0.0) + value
        return Snapshot(merged)

    def select(self, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Samples named ``name`` whose labels include ``labels``: {labels: value}."""
        found = {}
        for (sample, pairs), value in self.samples.items():
            if sample == name and all((k, v) in pairs for k, v in labels.items()):
                found[pairs] = value
        return found


def request_counts(snapshot: Snapshot, endpoint: str) -> dict[str, float]:
    """Requests to ``endpoint`` by status code."""
    counts: dict[str, float] = {}
    for pairs, value in snapshot.select(REQUESTS, endpoint=endpoint).items():
        code = dict(pairs).get("code", "")
        counts[code] = counts.get(code, 0.0) + value
    return counts


def histogram_quantile(q: float, snapshot: Snapshot, endpoint: str) -> float | None:
    """The q-quantile of ``endpoint``'s request duration, the way PromQL's
    histogram_quantile estimates it (linear within a bucket). None without data;
    the largest finite bound when it falls in the +Inf bucket."""
    buckets: dict[float, float] = {}
    for pairs, value in snapshot.select(DURATION_BUCKET, endpoint=endpoint).items():
        bound = float(dict(pairs)["le"])
        buckets[bound] = buckets.get(bound, 0.0) + value
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def input_histograms(snapshot: Snapshot) -> dict[str, tuple[list[float], list[float]]]:
    """The model server's input histograms: feature -> (finite upper bounds, count per bin).

    /metrics has cumulative ``le`` buckets; the counts here are per bin, the
    last one above the largest finite bound.
    """
    cumulative: dict[str, dict[float, float]] = {}
    for pairs, value in snapshot.select(INPUT_BUCKET).items():
        labels = dict(pairs)
        cumulative.setdefault(labels.get("feature", ""), {})[float(labels.get("le", "nan"))] = value
    found = {}
    for feature, buckets in cumulative.items():
        bounds = sorted(b for b in buckets if not math.isnan(b))
        counts, below = [], 0.0
        for bound in bounds:
            counts.append(max(buckets[bound] - below, 0.0))
            below = buckets[bound]
        found[feature] = ([b for b in bounds if math.isfinite(b)], counts)
    return found

"""gates.yaml's ``verification`` section: what `gitops-lab verify` accepts as healthy.

Post-deploy verification is not a gate (it runs after the change is live, not
before it is committed), but its thresholds change through Git like the gates',
and are validated with them: every problem of gates.yaml is reported at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from gitops_lab.adapters.repo.layout import ENVIRONMENTS

SECTION = "verification"
#: The labelled rows a verification can replay to /predict: the clean held-out
#: split, or requests prod received, labelled since (gitops_lab.model.dataset).
TRAFFIC = ("held-out", "prod-traffic")
DEFAULT_TRAFFIC = "held-out"
#: What a drift of live inputs does to the verification: fail it, or only warn.
ON_DRIFT = ("warn", "fail")


@dataclass(frozen=True)
class InputDriftSettings:
    """``verification.input_drift``: live inputs against the training reference."""

    psi_max: float = 0.2  # population stability index per feature above which inputs drifted
    min_rows: int = 100  # fewer rows received than this: too few to judge, neither pass nor fail
    on_drift: str = "warn"  # warn: report it, the verification still passes; fail: it fails


@dataclass(frozen=True)
class VerificationSettings:
    sample_size: int  # labelled held-out rows sent to /predict
    accuracy_tolerance: float  # live accuracy may be this much below the recorded one
    load_requests: int  # one-row /predict requests of the short load
    load_concurrency: int  # at most this many at a time
    max_error_rate: float  # non-2xx /predict answers / all, from /metrics
    max_latency_p95_seconds: float  # p95 of /predict from the server's histogram
    max_restarts: int  # container restarts a serving pod may have
    # Which labelled rows each environment's verification replays (default: held-out).
    traffic: dict[str, str] = field(default_factory=dict)
    input_drift: InputDriftSettings = field(default_factory=InputDriftSettings)

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> "VerificationSettings":
        values = {key: section[key] for key in cls.__dataclass_fields__ if key in section}
        if "input_drift" in values:
            values["input_drift"] = InputDriftSettings(**values["input_drift"])
        return cls(**values)

    def traffic_for(self, env: str) -> str:
        return self.traffic.get(env, DEFAULT_TRAFFIC)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_INTEGERS = {"sample_size": 1, "load_requests": 1, "load_concurrency": 1, "max_restarts": 0}
_FRACTIONS = ("accuracy_tolerance", "max_error_rate")


def problems(section: Any) -> list[str]:
    """Every problem of the section, in words; empty when it is valid."""
    if not isinstance(section, dict):
        return [f"{SECTION}: must be a mapping of settings"]
    found = []
    known = set(VerificationSettings.__dataclass_fields__)
    for key in sorted(set(section) - known, key=str):
        found.append(f"{SECTION}: unknown key {key!r} (expected: {', '.join(sorted(known))})")
    for key, least in _INTEGERS.items():
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            found.append(f"{SECTION}.{key}: expected a whole number >= {least}, got {value!r}")
    for key in _FRACTIONS:
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            found.append(f"{SECTION}.{key}: expected a number from 0 to 1, got {value!r}")
    traffic = section.get("traffic", {})
    if not isinstance(traffic, dict):
        found.append(f"{SECTION}.traffic: expected a mapping of environment to one of: {', '.join(TRAFFIC)}")
    else:
        for env, source in sorted(traffic.items(), key=str):
            if env not in ENVIRONMENTS:
                found.append(f"{SECTION}.traffic: unknown environment {env!r} (expected: {', '.join(ENVIRONMENTS)})")
            elif source not in TRAFFIC:
                found.append(f"{SECTION}.traffic.{env}: expected one of: {', '.join(TRAFFIC)}, got {source!r}")
    found += _input_drift_problems(section.get("input_drift", {}))
    value = section.get("max_latency_p95_seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        found.append(f"{SECTION}.max_latency_p95_seconds: expected a number of seconds > 0, got {value!r}")
    return found


def _input_drift_problems(section: Any) -> list[str]:
    where = f"{SECTION}.input_drift"
    if not isinstance(section, dict):
        return [f"{where}: expected a mapping with psi_max, min_rows and on_drift, got {section!r}"]
    found = []
    known = set(InputDriftSettings.__dataclass_fields__)
    for key in sorted(set(section) - known, key=str):
        found.append(f"{where}: unknown key {key!r} (expected: {', '.join(sorted(known))})")
    value = section.get("psi_max", InputDriftSettings.psi_max)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        found.append(f"{where}.psi_max: expected a number > 0 (0.2 is the usual threshold), got {value!r}")
    value = section.get("min_rows", InputDriftSettings.min_rows)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        found.append(f"{where}.min_rows: expected a whole number >= 1, got {value!r}")
    value = section.get("on_drift", InputDriftSettings.on_drift)
    if value not in ON_DRIFT:
        found.append(f"{where}.on_drift: expected one of: {', '.join(ON_DRIFT)}, got {value!r}")
    return found

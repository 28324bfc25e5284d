"""gates.yaml's ``verification`` section: what `gitops-lab verify` accepts as healthy.

Post-deploy verification is not a gate (it runs after the change is live, not
before it is committed), but its thresholds change through Git like the gates',
and are validated with them: every problem of gates.yaml is reported at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gitops_lab.adapters.repo.layout import ENVIRONMENTS

SECTION = "verification"
#: The labelled rows a verification can replay to /predict: the clean held-out
#: split, or requests prod received, labelled since (gitops_lab.model.dataset).
TRAFFIC = ("held-out", "prod-traffic")
DEFAULT_TRAFFIC = "held-out"


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

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> "VerificationSettings":
        return cls(**{key: section[key] for key in cls.__dataclass_fields__ if key in section})

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
    value = section.get("max_latency_p95_seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        found.append(f"{SECTION}.max_latency_p95_seconds: expected a number of seconds > 0, got {value!r}")
    return found

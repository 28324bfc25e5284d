"""`doctor`: can this machine run the lab? Every preflight check, nothing created or changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops_lab.adapters.cluster.kind_config import KindSettings
from gitops_lab.adapters.cluster.kind_provider import KindCluster
from gitops_lab.state import environment_dir
from gitops_lab.workflows.preflight import Check, Probes, collect_checks


@dataclass
class DoctorReport:
    checks: list[Check]

    @property
    def blocking(self) -> list[Check]:
        """The problems that would stop `up`."""
        return [c for c in self.checks if c.blocks]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and not c.skipped and not c.blocks]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.blocking, "checks": [c.as_dict() for c in self.checks]}


def doctor(name: str) -> DoctorReport:
    """Run every check for the lab environment ``name``; its own kind cluster may hold the lab's ports."""
    settings = KindSettings(name=name)
    cluster = KindCluster(settings, environment_dir(name))
    return DoctorReport(collect_checks(settings.ports, Probes(cluster_exists=cluster.exists)))

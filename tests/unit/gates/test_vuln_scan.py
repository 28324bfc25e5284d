"""The vuln-scan gate and the SBOM: the real osv-scanner (pinned, built by scripts/install-ci-tools).

Offline: the advisories are a small real subset of the OSV database
(tests/testdata/osv: PyYAML's GHSA and PYSEC records) zipped into
osv-scanner's own offline layout, named by $GITOPS_LAB_OSV_DB. The seeded
requirements.lock must pass; PyYAML pinned to 5.3.1 must fail naming the
advisory, its aliases, the package, the pinned and the fixed version; the
upgrade must pass again. A missing or damaged database, or no scanner, is one
line with its fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.gitutil import git
from helpers.labenv import lab_test_steps
from helpers.osvdb import build_osv_db

from gitops_lab.gates import run_gates
from gitops_lab.gates.vuln_scan import DB_VAR, find_scanner

needs_osv_scanner = pytest.mark.skipif(
    find_scanner() is None, reason="osv-scanner is not installed (run scripts/install-ci-tools, or put it on PATH)"
)
CURRENT = "PyYAML==6.0.4 \\\n    --hash=sha256:622aa875fa6533f25fedcffe23079357d65a690d462200afed5d8e9d0e01ebee"
VULNERABLE = "PyYAML==5.3.1 \\\n    --hash=sha256:b8eac752c5e14d3eca0e6dd9199cd627518cb5ec06add0de9d32baeee6fe645d"
FINDING = "PYSEC-2021-142 (CVE-2020-14343, GHSA-8q59-q68h-6hv4): pyyaml 5.3.1 in requirements.lock, fixed in 5.4"


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    db = build_osv_db(tmp_path / "osv-db")
    monkeypatch.setenv(DB_VAR, str(db))
    return db


def scan(wc):
    [result] = run_gates(wc, "dev", "staging", only=["vuln-scan"])
    return result


def pin(wc: Path, old: str, new: str) -> None:
    lock = wc / "requirements.lock"
    text = lock.read_text()
    assert old in text
    lock.write_text(text.replace(old, new))


@needs_osv_scanner
def test_the_seeded_lock_passes_then_an_old_pyyaml_fails_naming_the_advisory_then_the_upgrade_passes(lab, offline):
    wc, _ = lab
    result = scan(wc)
    assert result.passed, result.details
    assert (
        result.summary
        == f"no known vulnerabilities in the 56 packages of requirements.lock (offline database {offline})"
    )

    pin(wc, CURRENT, VULNERABLE)
    result = scan(wc)
    assert not result.passed
    assert result.details == [f"fail: {FINDING}"]
    assert result.summary == f"1 known vulnerability (offline database {offline}): {FINDING}"
    # PYSEC-2020-96 (CVE-2020-1747) was fixed in 5.3.1 itself: the scanner matched ranges, not names.
    assert "CVE-2020-1747" not in result.summary

    pin(wc, VULNERABLE, CURRENT)
    assert scan(wc).passed


@needs_osv_scanner
def test_gate_run_fails_with_the_finding_and_exit_4(lab, offline, cli):
    wc, _ = lab
    pin(wc, CURRENT, VULNERABLE)
    result = cli("gate", "run", "--to", "staging", "--gate", "vuln-scan", "--repo", str(wc))
    assert result.exit_code == 4
    assert f"fail: {FINDING}" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert "fails 1 gate: vuln-scan" in line
    assert "upgrade each pin in requirements.lock to its fixed version" in line


@needs_osv_scanner
@pytest.mark.parametrize("damage", ["missing", "damaged"])
def test_a_missing_or_damaged_database_is_one_line_with_the_fix(lab, offline, cli, damage):
    wc, _ = lab
    archive = offline / "osv-scalibr" / "PyPI" / "all.zip"
    if damage == "missing":
        archive.unlink()
    else:
        archive.write_bytes(archive.read_bytes()[:200])
    result = cli("gate", "run", "--to", "staging", "--gate", "vuln-scan", "--repo", str(wc))
    assert result.exit_code == 4
    [line] = result.stderr.strip().splitlines()
    assert f"the offline advisory database {archive} is {damage}" in result.stdout
    assert "--download-offline-databases" in line and f"unset ${DB_VAR}" in line
    assert "Traceback" not in result.output


def test_without_osv_scanner_the_gate_fails_with_the_install_fix(lab, cli, monkeypatch, tmp_path):
    wc, _ = lab
    monkeypatch.setenv("GITOPS_LAB_OSV_SCANNER", str(tmp_path / "no-osv-scanner"))
    result = cli("gate", "run", "--to", "staging", "--gate", "vuln-scan", "--repo", str(wc))
    assert result.exit_code == 4
    [line] = result.stderr.strip().splitlines()
    assert "fails 1 gate: vuln-scan" in line
    assert "vuln-scan: install osv-scanner 2.5.0 with scripts/install-ci-tools" in line


@needs_osv_scanner
def test_the_sbom_is_cyclonedx_with_a_purl_for_every_locked_package(lab, offline, tmp_path):
    wc, _ = lab
    out = tmp_path / "sbom.cdx.json"
    proc = subprocess.run(
        [sys.executable, "-m", "gitops_lab.gates.vuln_scan", "sbom", str(out)],
        cwd=wc,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{out}: CycloneDX SBOM of requirements.lock, 56 components"
    bom = json.loads(out.read_text())
    assert bom["bomFormat"] == "CycloneDX"
    assert bom["specVersion"] == "1.5"
    purls = {c["purl"] for c in bom["components"]}
    pins = [line.split(" ")[0] for line in (wc / "requirements.lock").read_text().splitlines() if "==" in line]
    assert len(pins) == 56 == len(purls)
    assert "pkg:pypi/pyyaml@6.0.4" in purls and "pkg:pypi/model-signing@1.1.1" in purls


# The pipeline's security stage fails on the vulnerable pin naming the advisory, and keeps the SBOM of the
# lock: tests/unit/workflows/test_pipeline_stages.py, on python -m gitops_lab.pipeline.


@needs_osv_scanner
def test_the_dependency_audit_lab_passes_lab_test_without_a_cluster(lab, offline, cli):
    """`lab test`: after setup the scan fails (PyYAML 5.3.1), after the upgrade it passes, then reset."""
    wc, _ = lab
    assert lab_test_steps(cli, wc, "dependency-audit") == [
        ("upgrade-vulnerable-pin", "passed"),
        ("publish-the-sbom", "passed"),
        ("reset", "passed"),
    ]


@needs_osv_scanner
def test_the_lab_check_refuses_a_deleted_pin(lab, offline, cli):
    """Removing PyYAML from the lock also makes the scan pass: the lab's check must still fail."""
    wc, _ = lab
    assert cli("lab", "start", "dependency-audit", "--repo", str(wc)).exit_code == 0
    git(wc, "pull", "-q")
    lock = wc / "requirements.lock"
    lock.write_text(lock.read_text().replace(VULNERABLE + "\n", ""))
    git(wc, "commit", "-qam", "Drop PyYAML")
    git(wc, "push", "-q")
    assert scan(wc).passed
    result = cli("lab", "check", "--repo", str(wc))
    assert result.exit_code != 0
    assert "requirements.lock no longer pins PyYAML: pin a fixed version instead of removing it" in result.output


def test_the_seeded_lock_pins_every_dependency_of_gitops_lab_with_a_hash():
    """requirements.lock is what the pipeline runs: each of gitops-lab's dependencies, exact, with its sha256."""
    import re

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    root = REPO
    logical = re.sub(r"\\\n\s*", " ", (root / "environments" / "requirements.lock").read_text()).splitlines()
    entries = [e for e in logical if e.strip() and not e.startswith("#")]

    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {}
    for entry in entries:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", entry.strip())
        assert match, f"not an exact pin with one sha256: {entry}"
        pins[normal(match.group(1))] = match.group(2)
    assert len(pins) == len(entries) == 56
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    needed = {normal(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in declared if "python_version <" not in d}
    assert needed - set(pins) == set()


def test_the_sbom_command_without_osv_scanner_is_one_line_with_the_install_fix(lab, tmp_path):
    wc, _ = lab
    proc = subprocess.run(
        [sys.executable, "-m", "gitops_lab.gates.vuln_scan", "sbom", str(tmp_path / "sbom.cdx.json")],
        cwd=wc,
        env={**os.environ, "GITOPS_LAB_OSV_SCANNER": str(tmp_path / "no-osv-scanner")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: osv-scanner is not installed; install osv-scanner 2.5.0 with scripts/install-ci-tools "
        "(a pinned Go module), or put it on PATH or in $GITOPS_LAB_OSV_SCANNER"
    ]
    assert not (tmp_path / "sbom.cdx.json").exists()

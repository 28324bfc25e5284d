"""The vuln-scan gate: osv-scanner over the repository's locked Python dependencies.

osv-scanner (a pinned Go module, built by scripts/install-ci-tools) reads the
lock file gates.yaml names (``vuln-scan.lockfile``, default requirements.lock:
exact pins with hashes) and matches every pin against the OSV advisories. A
finding names the advisory (with its aliases), the package, the pinned version
and the version that fixes it.

Where the advisories come from: the live OSV database (api.osv.dev) by default;
with ``$GITOPS_LAB_OSV_DB`` set, only the local copy there, in osv-scanner's own
offline layout (``<dir>/osv-scalibr/PyPI/all.zip``) and nothing goes over the
network. The tests use that with a small real subset of the advisories
(tests/testdata/osv).

``write_sbom`` writes the same lock file's CycloneDX SBOM, with the scanner's
own CycloneDX output: the pipeline's security stage keeps it as an artifact.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitops_lab.errors import GitOpsLabError
from gitops_lab.gates.ci_tools import find_tool
from gitops_lab.gates.result import GateContext, GateResult
from gitops_lab.deadline import current_deadline
from gitops_lab.processes import run_bounded

NAME = "vuln-scan"
#: The version scripts/install-ci-tools builds (2.6.0 and later need Go 1.27).
OSV_SCANNER_VERSION = "2.5.0"
SCANNER_VAR = "GITOPS_LAB_OSV_SCANNER"
#: Set: scan offline against the osv-scanner database in this folder. Unset: the live database.
DB_VAR = "GITOPS_LAB_OSV_DB"
ECOSYSTEM = "PyPI"
DEFAULT_LOCKFILE = "requirements.lock"
SCAN_TIMEOUT = 300.0
#: osv-scanner's exit codes: 1 is "vulnerabilities found"; anything else but 0 is its own error.
FOUND_EXIT = 1
SBOM_FORMAT = "cyclonedx-1-5"
INSTALL_FIX = (
    f"install osv-scanner {OSV_SCANNER_VERSION} with scripts/install-ci-tools (a pinned Go module), "
    f"or put it on PATH or in ${SCANNER_VAR}"
)
DB_FIX = (
    f"download it with `osv-scanner scan source --offline-vulnerabilities --download-offline-databases "
    f"--local-db-path ${DB_VAR} -L requirements.txt:requirements.lock`, or unset ${DB_VAR} to use the live database"
)

LIVE_FIX = f"the live database needs api.osv.dev: check the network, or scan offline with ${DB_VAR} (docs/gates.md)"


class ScanError(GitOpsLabError):
    """The scan could not run (no scanner, no lock file, no database, a scanner error); ``fix`` says what to do."""


def find_scanner() -> str | None:
    """osv-scanner: $GITOPS_LAB_OSV_SCANNER, else on PATH, else where scripts/install-ci-tools puts it."""
    return find_tool("osv-scanner", SCANNER_VAR)


def check(ctx: GateContext) -> GateResult:
    lockfile = str(ctx.settings.get("lockfile") or DEFAULT_LOCKFILE)
    try:
        report, source = _scan(ctx.root, lockfile, ["--format", "json"])
    except ScanError as error:
        return GateResult(NAME, False, str(error), [f"fail: {error}"], fix=error.fix or "")
    findings = findings_of(report)
    packages = sum(len(r.get("packages") or []) for r in report.get("results") or [] if isinstance(r, dict))
    if not findings:
        summary = f"no known vulnerabilities in the {packages} packages of {lockfile} ({source})"
        return GateResult(NAME, True, summary, [f"pass: {summary}"])
    shown = "; ".join(findings[:3]) + (f"; and {len(findings) - 3} more" if len(findings) > 3 else "")
    count = f"{len(findings)} known vulnerabilit{'ies' if len(findings) != 1 else 'y'}"
    return GateResult(
        NAME,
        False,
        f"{count} ({source}): {shown}",
        [f"fail: {line}" for line in findings],
        fix=f"upgrade each pin in {lockfile} to its fixed version (with the new file's --hash), then run the scan again",
    )


def write_sbom(root: Path, out: Path, lockfile: str = DEFAULT_LOCKFILE) -> int:
    """Write the CycloneDX SBOM of ``lockfile`` to ``out``; return how many components it lists."""
    bom, _ = _scan(root, lockfile, ["--format", SBOM_FORMAT])
    components = bom.get("components")
    if bom.get("bomFormat") != "CycloneDX" or not isinstance(components, list):
        raise ScanError("osv-scanner wrote no CycloneDX SBOM", fix="run osv-scanner by hand and fix what it says")
    out.write_text(json.dumps(bom, indent=2) + "\n", encoding="utf-8")
    return len(components)


def findings_of(report: dict[str, Any]) -> list[str]:
    """One line per advisory and package: id (aliases), package, pinned version, fixed version, file."""
    lines: list[str] = []
    for result in report.get("results") or []:
        path = Path(str((result.get("source") or {}).get("path") or "?")).name
        for entry in result.get("packages") or []:
            package = entry.get("package") or {}
            name, version = str(package.get("name", "?")), str(package.get("version", "?"))
            by_id = {v.get("id"): v for v in entry.get("vulnerabilities") or [] if isinstance(v, dict)}
            # A group is one advisory under all its ids (GHSA, PYSEC, CVE): report it once.
            groups = entry.get("groups") or [{"ids": [i]} for i in by_id]
            for group in groups:
                ids = [str(i) for i in group.get("ids") or []]
                if not ids:
                    continue
                aliases = sorted({*ids[1:], *(str(a) for a in group.get("aliases") or [])} - {ids[0]})
                fixed = _fixed_version(name, version, [by_id[i] for i in ids if i in by_id])
                named = f"{ids[0]} ({', '.join(aliases)})" if aliases else ids[0]
                lines.append(f"{named}: {name} {version} in {path}, fixed in {fixed}")
    return sorted(lines)


def _fixed_version(name: str, version: str, vulns: Sequence[dict[str, Any]]) -> str:
    """The lowest fixed version above ``version`` the advisories name, or every one they name."""
    fixed: set[str] = set()
    for vuln in vulns:
        for affected in vuln.get("affected") or []:
            if _normal(str((affected.get("package") or {}).get("name", ""))) != _normal(name):
                continue
            for rng in affected.get("ranges") or []:
                fixed |= {str(e["fixed"]) for e in rng.get("events") or [] if isinstance(e, dict) and "fixed" in e}
    if not fixed:
        return "no fixed version yet"
    above = [f for f in fixed if _release(f) > _release(version)]
    if above:
        return min(above, key=_release)
    return " or ".join(sorted(fixed, key=_release))


def _normal(name: str) -> str:
    """A PyPI name as PEP 503 compares it (PyYAML, pyyaml and py_yaml are one package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(version: str) -> tuple[int, ...]:
    """The numeric release part of a version (5.3.1 -> (5, 3, 1)), enough to order fixed versions."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def _scan(root: Path, lockfile: str, output: list[str]) -> tuple[dict[str, Any], str]:
    """Run osv-scanner on ``lockfile``; return its parsed output and where its advisories came from."""
    scanner = find_scanner()
    if scanner is None:
        raise ScanError("osv-scanner is not installed", fix=INSTALL_FIX)
    if not (root / lockfile).is_file():
        raise ScanError(
            f"{lockfile} not found: no locked dependencies to scan",
            fix=f"commit the pipeline's pinned dependencies as {lockfile} (or set vuln-scan.lockfile in gates.yaml)",
        )
    # --no-resolve: the lock file is the whole dependency set; nothing is looked up beyond it.
    # --all-packages: packages without findings too (the SBOM lists every one; the report counts them).
    cmd = [scanner, "scan", "source", "--no-resolve", "--all-packages", *output, "-L", f"requirements.txt:{lockfile}"]
    db = os.environ.get(DB_VAR)
    if db:
        _check_local_db(Path(db))
        # The flag, not osv-scanner's environment variable: the variable's name changed between
        # releases (OSV_SCANNER_... in its docs, OSV_SCALIBR_... in 2.5.0), the flag did not.
        cmd[3:3] = ["--offline", "--local-db-path", db]
        source = f"offline database {db}"
    else:
        source = "live OSV database"
    deadline = current_deadline()
    timeout = min(SCAN_TIMEOUT, deadline.remaining()) if deadline else SCAN_TIMEOUT
    try:
        proc = run_bounded(cmd, timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        raise ScanError(
            f"osv-scanner did not finish within {timeout:.0f}s",
            fix=LIVE_FIX,
        ) from None
    except OSError as error:
        raise ScanError(f"cannot run osv-scanner: {error.strerror or error}", fix=INSTALL_FIX) from None
    if proc.returncode not in (0, FOUND_EXIT):
        said = [line for line in proc.stderr.splitlines() if line.strip()]
        last = said[-1][:200] if said else "no message"
        raise ScanError(
            f"osv-scanner failed (exit {proc.returncode}): {last}",
            fix=DB_FIX if db else LIVE_FIX,
        )
    try:
        data = json.loads(proc.stdout)
    except ValueError as error:
        raise ScanError(
            f"osv-scanner wrote no readable report ({error})", fix="run osv-scanner by hand and fix what it says"
        ) from None
    if not isinstance(data, dict):
        raise ScanError("osv-scanner wrote no readable report", fix="run osv-scanner by hand and fix what it says")
    return data, source


def _check_local_db(db: Path) -> None:
    """Refuse a missing or damaged database before osv-scanner runs (it would create folders in it)."""
    archive = db / "osv-scalibr" / ECOSYSTEM / "all.zip"
    if not archive.is_file():
        raise ScanError(f"the offline advisory database {archive} is missing (${DB_VAR} is {db})", fix=DB_FIX)
    try:
        with zipfile.ZipFile(archive) as zipped:
            damaged = zipped.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise ScanError(f"the offline advisory database {archive} is damaged ({error})", fix=DB_FIX) from None
    if damaged is not None:
        raise ScanError(f"the offline advisory database {archive} is damaged ({damaged} fails its CRC)", fix=DB_FIX)


def main(argv: list[str] | None = None) -> int:
    """``python -m gitops_lab.gates.vuln_scan sbom OUT``: the pipeline's SBOM artifact."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m gitops_lab.gates.vuln_scan", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sbom = commands.add_parser("sbom", help="write the lock file's CycloneDX SBOM")
    sbom.add_argument("out", type=Path, help="where to write it (JSON)")
    sbom.add_argument("--lockfile", default=DEFAULT_LOCKFILE, help=f"the lock file (default {DEFAULT_LOCKFILE})")
    sbom.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        count = write_sbom(args.repo, args.out, args.lockfile)
    except ScanError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"{args.out}: CycloneDX SBOM of {args.lockfile}, {count} components")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

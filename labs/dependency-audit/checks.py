"""Checks of the dependency-audit lab: the vulnerable pin was upgraded, not hidden."""

from __future__ import annotations

import re


def pin_upgraded(ctx, package: str) -> tuple[bool, str]:
    """The pushed requirements.lock still pins ``package`` exactly, with a hash, and gates.yaml still scans it.

    Deleting the pin, or pointing vuln-scan.lockfile at another file, would
    also make the scan pass: that hides the vulnerable version instead of
    replacing it.
    """
    from gitops_lab.gates.config import config_from_text

    ref = ctx.pushed()
    lockfile = str(config_from_text(_show(ctx, f"{ref}:gates.yaml")).settings["vuln-scan"].get("lockfile"))
    if lockfile != "requirements.lock":
        return False, f"gates.yaml scans {lockfile} instead of requirements.lock: put vuln-scan.lockfile back"
    text = _show(ctx, f"{ref}:requirements.lock")
    if text is None:
        return False, "requirements.lock is gone from the pushed branch: restore it and upgrade the pin"
    # A requirement and its --hash options form one logical line (backslash continuations).
    entries = re.sub(r"\\\n\s*", " ", text).splitlines()
    name = re.sub(r"[-_.]+", "-", package).lower()
    for entry in entries:
        match = re.match(r"\s*([A-Za-z0-9._-]+)==(\S+)(.*)", entry)
        if match and re.sub(r"[-_.]+", "-", match.group(1)).lower() == name:
            if "--hash=sha256:" not in match.group(3):
                return False, f"requirements.lock pins {package} {match.group(2)} without --hash: add its sha256"
            return True, f"requirements.lock pins {package} {match.group(2)} with its hash"
    return False, f"requirements.lock no longer pins {package}: pin a fixed version instead of removing it"


def _show(ctx, spec: str) -> str | None:
    proc = ctx.git.run("show", spec, check=False)
    return proc.stdout if proc.returncode == 0 else None


SBOM = "sbom.cdx.json"


def sbom_matches_lock(ctx) -> tuple[bool, str]:
    """The pushed sbom.cdx.json is CycloneDX and lists exactly the pins of the pushed requirements.lock."""
    import json

    ref = ctx.pushed()
    text = _show(ctx, f"{ref}:{SBOM}")
    if text is None:
        return False, f"no {SBOM} on the pushed branch: write it, commit it and push"
    try:
        bom = json.loads(text)
    except ValueError as error:
        return False, f"{SBOM} is not JSON ({error}): write it again with the SBOM command"
    if not isinstance(bom, dict) or bom.get("bomFormat") != "CycloneDX":
        return False, f"{SBOM} is not a CycloneDX SBOM (no bomFormat: CycloneDX)"
    listed = {str(c.get("purl")) for c in bom.get("components") or [] if isinstance(c, dict)}
    pinned = {f"pkg:pypi/{name}@{version}" for name, version in _pins(_show(ctx, f"{ref}:requirements.lock") or "")}
    missing, extra = sorted(pinned - listed), sorted(listed - pinned)
    if missing or extra:
        said = [
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"not pinned {', '.join(extra[:3])}" if extra else "",
        ]
        return False, f"{SBOM} does not match requirements.lock ({'; '.join(s for s in said if s)}): write it again"
    return True, f"{SBOM} lists the {len(pinned)} packages requirements.lock pins, each with its purl"


def publish_sbom(ctx) -> None:
    """What a learner does: write the SBOM of the pushed lock file, commit it and push."""
    import tempfile
    from pathlib import Path

    from gitops_lab.gates.vuln_scan import write_sbom
    from gitops_lab.labs.actions import do_commit_file

    with tempfile.TemporaryDirectory(prefix="gitops-lab-sbom-") as tmp:
        out = Path(tmp) / SBOM
        write_sbom(ctx.repo, out)
        content = out.read_text(encoding="utf-8")
    do_commit_file(ctx, {"path": SBOM, "content": content, "message": "Publish the SBOM of requirements.lock"})


def _pins(text: str) -> list[tuple[str, str]]:
    """(normalized name, version) of every exact pin in a requirements file."""
    pins = []
    for entry in re.sub(r"\\\n\s*", " ", text).splitlines():
        match = re.match(r"\s*([A-Za-z0-9._-]+)==(\S+)", entry)
        if match:
            pins.append((re.sub(r"[-_.]+", "-", match.group(1)).lower(), match.group(2)))
    return pins

"""The secret-scan gate: gitleaks over the repository's commits and its working tree.

gitleaks (a pinned Go module, built by scripts/install-ci-tools) scans every
commit's changes (``git`` mode; gates.yaml ``secret-scan.commits`` narrows it to
a range) and the files as they are now (``dir`` mode, uncommitted ones
included). A finding names its file, line, rule and commit. Secrets are
redacted: nothing the gate prints or records contains one.

An allowlist is an exception someone must explain: every allowlist in the
repository's ``.gitleaks.toml`` needs a ``description`` (the reason), and every
fingerprint in ``.gitleaksignore`` a ``# reason`` comment on the line above it.
An exception without a reason fails the gate, naming it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gitops_lab.deadline import current_deadline
from gitops_lab.gates.ci_tools import find_tool
from gitops_lab.gates.result import GateContext, GateResult
from gitops_lab.processes import run_bounded

NAME = "secret-scan"
#: The version scripts/install-ci-tools builds (a `go install` build does not report its version).
GITLEAKS_VERSION = "8.30.1"
SCANNER_VAR = "GITOPS_LAB_GITLEAKS"
CONFIG_FILE = ".gitleaks.toml"
IGNORE_FILE = ".gitleaksignore"
SCAN_TIMEOUT = 300.0
MIN_REASON = 10
#: gitleaks' exit code for "found leaks" (chosen so that its own errors, exit 1, stay apart).
LEAKS_EXIT = 3
INSTALL_FIX = (
    f"install gitleaks {GITLEAKS_VERSION} with scripts/install-ci-tools (a pinned Go module), "
    f"or put it on PATH or in ${SCANNER_VAR}"
)
REMEDY = (
    "rotate the credential, then remove it from every commit (rewrite the unpushed commits, or the history with "
    f"git filter-repo); if it is not a credential, add an [[allowlists]] entry with a description saying why to "
    f"{CONFIG_FILE}"
)


def find_scanner() -> str | None:
    """gitleaks: $GITOPS_LAB_GITLEAKS, else on PATH, else where scripts/install-ci-tools puts it."""
    return find_tool("gitleaks", SCANNER_VAR)


def check(ctx: GateContext) -> GateResult:
    scanner = find_scanner()
    if scanner is None:
        return GateResult(
            NAME, False, "gitleaks is not installed", ["fail: gitleaks is not installed"], fix=INSTALL_FIX
        )
    details = _allowlist_problems(ctx.root)
    commits = str(ctx.settings.get("commits") or "all")
    findings: list[str] = []
    for mode in ("git", "dir"):
        found = _scan(scanner, mode, ctx.root, commits)
        if isinstance(found, str):
            return GateResult(NAME, False, found, [f"fail: {found}"], fix="run gitleaks by hand and fix what it says")
        findings += found
    where = "any commit" if commits == "all" else f"commits {commits}"
    if findings:
        details += [f"fail: {line}" for line in findings]
    else:
        details.append(f"pass: no secrets in {where} or in the working tree")
    failed = [d.removeprefix("fail: ") for d in details if d.startswith("fail: ")]
    if not failed:
        return GateResult(NAME, True, f"no secrets in {where} or the tree (gitleaks)", details)
    if findings:
        shown = "; ".join(findings[:3]) + (f"; and {len(findings) - 3} more" if len(findings) > 3 else "")
        summary = f"{len(findings)} secret{'s' if len(findings) != 1 else ''} found: {shown}"
        return GateResult(NAME, False, summary, details, fix=REMEDY)
    return GateResult(
        NAME,
        False,
        "; ".join(failed),
        details,
        fix=f"give every exception its reason in {CONFIG_FILE} or {IGNORE_FILE}",
    )


def _scan(scanner: str, mode: str, root: Path, commits: str) -> list[str] | str:
    """One line per finding, or what went wrong."""
    with tempfile.TemporaryDirectory(prefix="gitops-lab-gitleaks-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            scanner,
            mode,
            "--no-banner",
            "--redact",
            "--log-level",
            "error",
            "--exit-code",
            str(LEAKS_EXIT),
            "--report-format",
            "json",
            "--report-path",
            str(report),
        ]
        if mode == "git" and commits != "all":
            cmd += ["--log-opts", commits]
        # From the root, so paths are the repository's (and allowlist paths match them) in both modes.
        cmd.append(".")
        deadline = current_deadline()
        timeout = min(SCAN_TIMEOUT, deadline.remaining()) if deadline else SCAN_TIMEOUT
        try:
            proc = run_bounded(cmd, timeout=timeout, cwd=root)
        except subprocess.TimeoutExpired:
            return f"gitleaks {mode} did not finish within {timeout:.0f}s"
        except OSError as error:
            return f"cannot run gitleaks: {error.strerror or error}"
        if proc.returncode not in (0, LEAKS_EXIT):
            said = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
            return f"gitleaks {mode} failed (exit {proc.returncode}): {said[-1][:200] if said else 'no message'}"
        try:
            data = json.loads(report.read_text(encoding="utf-8") or "[]")
        except (OSError, ValueError) as error:
            return f"gitleaks {mode} wrote no readable report ({error})"
    return [_finding(item, mode) for item in data if isinstance(item, dict)]


def _finding(item: dict[str, Any], mode: str) -> str:
    place = f"{item.get('File', '?')}:{item.get('StartLine', '?')} {item.get('RuleID', '?')}"
    commit = str(item.get("Commit") or "")
    where = f"commit {commit[:7]}" if mode == "git" and commit else "working tree"
    return f"{place} ({where})"


def _allowlist_problems(root: Path) -> list[str]:
    """A fail line for each exception without a written reason."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    problems: list[str] = []
    config = root / CONFIG_FILE
    if config.is_file():
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            return [f"fail: {CONFIG_FILE} is not valid TOML: {error}"]
        lists: list[tuple[str, Any]] = []
        if "allowlist" in data:
            lists.append(("[allowlist]", data["allowlist"]))
        lists += [(f"[[allowlists]] #{i + 1}", a) for i, a in enumerate(data.get("allowlists") or [])]
        for rule in data.get("rules") or []:
            rule_id = rule.get("id", "?") if isinstance(rule, dict) else "?"
            for i, a in enumerate((rule.get("allowlists") or []) if isinstance(rule, dict) else []):
                lists.append((f"rule {rule_id} allowlist #{i + 1}", a))
        for label, entry in lists:
            reason = entry.get("description") if isinstance(entry, dict) else None
            if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON:
                problems.append(f"fail: {CONFIG_FILE} {label} has no description: write down why it is not a secret")
            else:
                problems.append(f"pass: {CONFIG_FILE} {label}: {reason.strip()}")
    ignore = root / IGNORE_FILE
    if ignore.is_file():
        lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            above = lines[number - 2].strip() if number > 1 else ""
            if len(above.lstrip("#").strip()) < MIN_REASON or not above.startswith("#"):
                problems.append(f"fail: {IGNORE_FILE}:{number} ignores {text} without a '# reason' line above it")
            else:
                problems.append(f"pass: {IGNORE_FILE}:{number}: {above.lstrip('#').strip()}")
    return problems

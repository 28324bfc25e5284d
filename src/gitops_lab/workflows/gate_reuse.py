"""Reuse a gate's passing verdict when the same gate already passed on the same inputs.

A promotion's gates read the working copy; when nothing they read has changed
since a gate last passed, its verdict is the same, so it is taken from the
record instead of run again. The record is keyed by content, never by time:

- the gate's name, the promotion (from, to, version, what the destination runs
  now) and the gate's section of gates.yaml;
- what the gate reads in Git: the tree of HEAD (data-quality, model-eval,
  policy, vuln-scan) or the HEAD commit, history included (secret-scan);
- the tools it runs (kustomize, gitleaks, osv-scanner and its offline
  database: path, size and modification time) and gitops-lab's own code.

Only a clean working copy (no change, no untracked file) is keyed: its content
is HEAD's. Never reused: approval (it reads who promotes), custom gates (their
programs may read anything), vuln-scan against the live OSV database (it
changes by itself), and failures (a failing gate runs again, so its message is
always fresh). Records live in the state folder (``gate-verdicts/``), from a promotion's
gates and from `gate run`'s; a reused verdict says so in its details and in the
promotion's output.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import gitops_lab
from gitops_lab.adapters.renderer import kustomize_command
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.errors import PreflightError
from gitops_lab.gates import GateResult, GatesConfig, load_config
from gitops_lab.gates import data_quality, model_eval, policy, secret_scan, vuln_scan
from gitops_lab.gates.runner import judge
from gitops_lab.deadline import Deadline
from gitops_lab.state import state_root, write_private_json

FOLDER = "gate-verdicts"
KEPT = 200  # records kept; the oldest go first
FORMAT = 1
BY_TREE = (data_quality.NAME, model_eval.NAME, policy.NAME, vuln_scan.NAME)
BY_COMMIT = (secret_scan.NAME,)


def records_dir() -> Path:
    return state_root() / FOLDER


def judge_reusing(
    repo_path: str | Path,
    config: GatesConfig,
    src: str,
    dst: str,
    version: str,
    names: list[str],
    skip: Collection[str] = (),
    skipped_by: str = "",
    deadline: Deadline | None = None,
    rerun: bool = False,
) -> list[GateResult]:
    """``gates.runner.judge``, taking each gate's verdict from the record when it passed on the same inputs.

    With ``rerun``, every gate runs (and its pass is recorded again).
    """
    root = Path(repo_path)
    current = RepoLayout(root).model_version(dst)
    keys = _keys(root, config, src, dst, version, current, [n for n in names if n not in skip])
    reused = {} if rerun else {name: found for name, key in keys.items() if (found := _load(key)) is not None}
    ran = judge(root, config, src, dst, version, [n for n in names if n not in reused], skip, skipped_by, deadline)
    by_name = {r.name: r for r in ran}
    for name, key in keys.items():
        result = by_name.get(name)
        if result is not None and result.passed and not result.skipped:
            _save(key, result)
    return [reused.get(name) or by_name[name] for name in names]


def record(repo_path: str | Path, src: str, dst: str, version: str, results: list[GateResult]) -> None:
    """Keep the passes of gates run outside a promotion (`gate run`), so the promotion after it reuses them."""
    root = Path(repo_path)
    ran = [r for r in results if r.passed and not r.skipped and not r.reused_from]
    if not ran:
        return
    config = load_config(root)
    current = RepoLayout(root).model_version(dst)
    keys = _keys(root, config, src, dst, version, current, [r.name for r in ran])
    for result in ran:
        if result.name in keys:
            _save(keys[result.name], result)


def _keys(
    root: Path, config: GatesConfig, src: str, dst: str, version: str, current: str, names: list[str]
) -> dict[str, str]:
    """The record key of each gate in ``names`` that can be reused now (none when the working copy is not clean,
    or is no Git working copy)."""
    wanted = [n for n in names if n in BY_TREE or n in BY_COMMIT]
    if not wanted:
        return {}
    git = Git(root)
    # a folder that is no Git working copy (a CI job's checkout of files, `gate run` on a plain tree) has no
    # commit to key on: its gates run, as they would on a copy with changes
    if not git.is_repo() or git.out("status", "--porcelain", "--untracked-files=all"):
        return {}
    commit, tree = git.out("rev-parse", "HEAD", "HEAD^{tree}").split()
    code = _code_identity()
    keys = {}
    for name in wanted:
        tools = _tools(name)
        if tools is None:
            continue
        material = {
            "format": FORMAT,
            "gate": name,
            "promotion": [src, dst, version, current],
            "settings": config.settings.get(name, {}),
            "inputs": commit if name in BY_COMMIT else tree,
            "tools": tools,
            "code": code,
        }
        text = json.dumps(material, sort_keys=True, default=str)
        keys[name] = hashlib.sha256(text.encode()).hexdigest()
    return keys


def _tools(name: str) -> list[str] | None:
    """What identifies the programs gate ``name`` runs; None when its verdict must not be reused."""
    if name == policy.NAME:
        try:
            return [_file_identity(kustomize_command()[0])]
        except PreflightError:
            return None  # the gate says so itself
    if name == secret_scan.NAME:
        return [_file_identity(secret_scan.find_scanner())]
    if name == vuln_scan.NAME:
        db = os.environ.get(vuln_scan.DB_VAR)
        if not db:
            return None  # the live database changes by itself
        return [_file_identity(vuln_scan.find_scanner()), *_tree_identity(Path(db))]
    return []


def _file_identity(path: str | os.PathLike[str] | None) -> str:
    if not path:
        return "none"
    try:
        resolved = Path(path).resolve()
        st = resolved.stat()
    except OSError:
        return f"{path}: missing"
    return f"{resolved}:{st.st_size}:{st.st_mtime_ns}"


def _tree_identity(folder: Path) -> list[str]:
    if not folder.is_dir():
        return [_file_identity(folder)]
    return sorted(_file_identity(Path(base) / f) for base, _, files in os.walk(folder) for f in files)


def _code_identity() -> str:
    """gitops-lab's version and its newest source file (an edited checkout changes it)."""
    package = Path(gitops_lab.__file__).parent
    newest = max(
        (os.stat(os.path.join(base, f)).st_mtime_ns for base, _, files in os.walk(package) for f in files),
        default=0,
    )
    return f"{gitops_lab.__version__}:{newest}"


def _load(key: str) -> GateResult | None:
    path = records_dir() / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        result = GateResult(
            data["name"], bool(data["passed"]), data["summary"], list(data["details"]), fix=data.get("fix", "")
        )
        when = str(data["recorded_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no record, or a damaged one: the gate runs
    if not result.passed:
        return None
    note = f"pass: verdict reused from the run of {when} on the same inputs (`--rerun-gates` runs it again)"
    return replace(result, details=[*result.details, note], reused_from=when)


def _save(key: str, result: GateResult) -> None:
    folder = records_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        data = {**result.to_dict(), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        data.pop("reused_from", None)
        write_private_json(folder / f"{key}.json", data)
        records = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in records[:-KEPT]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a record not kept costs only a run next time

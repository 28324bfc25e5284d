"""The stages of the platform pipeline, each a list of checks, in the order the templates run them.

Every stage reads what the stage before it left in the artifacts folder and
refuses to run without it, so a pipeline can't pass by skipping its handoffs:

    data/dataset.json      data-preparation -> data-validation, training
    model/<version>.json   training -> integration-tests, evaluation (the candidate artifact)
    model/<version>.json.sig  training, with $MODEL_SIGNING_KEY: its model-signing bundle, also written
                           beside base/models/<version>.json, where the policy gate (security) checks it
    sbom/sbom.cdx.json     security: the CycloneDX SBOM of the locked dependencies (kept, read by no stage)
    junit/<stage>.xml      every stage, for the CI system's test report
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import unittest
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.errors import GitOpsLabError
from gitops_lab.gates import secret_scan, vuln_scan
from gitops_lab.gates.config import load_config
from gitops_lab.model import EVAL_METRIC, EVAL_THRESHOLD, dataset, train
from gitops_lab.model.dataset import held_out_rows
from gitops_lab.model.evaluate import metrics
from gitops_lab.model.signing import key_id, sign_artifact, signature_path
from gitops_lab.pipeline.integration import check_served_artifact
from gitops_lab.pipeline.junit import Check

#: The path of the PEM private key the training stage signs the candidate with (a CI secret); unset: no signing.
SIGNING_KEY_VAR = "MODEL_SIGNING_KEY"
# A gate or the model server runs as a process; this bounds a hung one, nothing waits on it otherwise.
PROCESS_TIMEOUT = 300
#: Where the security stage writes the SBOM, under the artifacts folder.
SBOM_FILE = "sbom/sbom.cdx.json"
#: How many of a failed gate's `fail:` lines its check's message repeats (all are in the job log).
FAILURES_SHOWN = 5
SECRET_PATTERNS = {
    "an AWS access key": r"AKIA[0-9A-Z]{16}",
    "a private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "a GitHub token": r"gh[pousr]_[A-Za-z0-9]{36}",
    "a GitLab token": r"glpat-[A-Za-z0-9_-]{20}",
    "a Slack token": r"xox[baprs]-[A-Za-z0-9-]{10,}",
}


class MissingHandoff(Exception):
    """A stage's input, which an earlier stage writes, is not in the artifacts folder."""


@dataclass
class StageContext:
    repo: Path
    artifacts: Path
    candidate_env: str
    model_server_url: str | None = None
    kubeconfig: str | None = None

    @property
    def version(self) -> str:
        return RepoLayout(self.repo).model_version(self.candidate_env)

    def handoff(self, relative: str, stage: str) -> Path:
        path = self.artifacts / relative
        if not path.is_file():
            raise MissingHandoff(
                f"{path} is missing: the {stage} stage writes it; run that stage first "
                f"(GitHub: `needs:`; GitLab: an earlier stage, its artifacts passed on)"
            )
        return path

    def candidate_artifact(self) -> Path:
        return self.handoff(f"model/{self.version}.json", "training")


def _gitops_lab(ctx: StageContext, *args: str) -> Check:
    """Run a gitops-lab command as a check; its output goes to the job log."""
    name = " ".join(args[:3])
    proc = subprocess.run(
        [sys.executable, "-m", "gitops_lab", *args],
        cwd=ctx.repo,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    message = lines[-1] if lines else f"exit {proc.returncode}"
    if proc.returncode != 0:
        # What a failed gate found (its `fail:` lines: a file and line, an advisory), then what to do.
        found = [
            line.strip().removeprefix("fail: ")
            for line in proc.stdout.splitlines()
            if line.strip().startswith("fail: ")
        ]
        more = f"; and {len(found) - FAILURES_SHOWN} more" if len(found) > FAILURES_SHOWN else ""
        message = "; ".join(found[:FAILURES_SHOWN]) + more + (" -- " if found else "") + message
    return Check(name, "passed" if proc.returncode == 0 else "failed", message)


def _gate(ctx: StageContext, gate: str, target: str = "staging", *, with_custom: bool = False) -> Check:
    """Run one built-in gate; ``with_custom`` adds the custom gates gates.yaml requires for ``target``."""
    check = _gitops_lab(
        ctx,
        "gate",
        "run",
        "--repo",
        str(ctx.repo),
        "--from",
        ctx.candidate_env,
        "--to",
        target,
        "--version",
        ctx.version,
        "--gate",
        gate,
        *(["--custom"] if with_custom else []),
    )
    check.name = f"{gate} gate ({ctx.version}, {ctx.candidate_env} -> {target})"
    return check


def data_preparation(ctx: StageContext) -> list[Check]:
    raw = dataset.read_raw()
    prepared = dataset.prepare(raw)
    out = ctx.artifacts / "data"
    out.mkdir(parents=True, exist_ok=True)
    (out / "prepared.csv").write_text(
        dataset.to_csv([{k: str(v) for k, v in row.items()} for row in prepared.rows]), encoding="utf-8"
    )
    record = {
        "dataset": dataset.DATA_FILE.name,
        "sha256": dataset.file_sha256(),
        "rows_read": prepared.rows_read,
        "rows_kept": len(prepared.rows),
        "null_rows": prepared.null_rows,
        "invalid_rows": prepared.invalid_rows,
    }
    (out / "dataset.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"prepared {record['rows_kept']} of {record['rows_read']} rows of {record['dataset']} -> {out}")
    kept = Check("rows kept after cleaning", "passed" if prepared.rows else "failed", f"{len(prepared.rows)} rows")
    return [kept]


def data_validation(ctx: StageContext) -> list[Check]:
    record = json.loads(ctx.handoff("data/dataset.json", "data-preparation").read_text(encoding="utf-8"))
    committed = json.loads((ctx.repo / "base" / "models" / f"{ctx.version}.json").read_text(encoding="utf-8"))
    recorded = committed["training"]["dataset_sha256"]
    same = Check(
        "the candidate was trained on the prepared dataset",
        "passed" if recorded == record["sha256"] else "failed",
        f"{ctx.version} records dataset {recorded[:12]}, data preparation produced {record['sha256'][:12]}",
    )
    # The data-quality gate compares the candidate's training slice with the reference: drift, nulls, ranges.
    return [same, _gate(ctx, "data-quality")]


def training(ctx: StageContext) -> list[Check]:
    record = json.loads(ctx.handoff("data/dataset.json", "data-preparation").read_text(encoding="utf-8"))
    artifact = train.build_artifacts()[ctx.version]
    out = ctx.artifacts / "model" / f"{ctx.version}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(artifact, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"trained {ctx.version} -> {out}")
    checks = [
        Check(
            "trained on the prepared dataset",
            "passed" if artifact["training"]["dataset_sha256"] == record["sha256"] else "failed",
            f"artifact records {artifact['training']['dataset_sha256'][:12]}",
        )
    ]
    committed = ctx.repo / "base" / "models" / f"{ctx.version}.json"
    same = committed.is_file() and committed.read_bytes() == out.read_bytes()
    checks.append(
        Check(
            "the committed artifact is what training writes",
            "passed" if same else "failed",
            f"{committed.relative_to(ctx.repo)} {'matches' if same else 'differs from'} the trained {out.name}",
        )
    )
    key = os.environ.get(SIGNING_KEY_VAR)
    if key:
        checks.append(_sign(ctx, committed, out, same, Path(key)))
    return checks


def _sign(ctx: StageContext, committed: Path, trained: Path, same: bool, key: Path) -> Check:
    """Sign the committed artifact (the bytes training wrote) with ``key``; its bundle is also handed off."""
    shown = str(committed.relative_to(ctx.repo))
    name = f"{shown} signed with ${SIGNING_KEY_VAR}"
    if not same:
        return Check(name, "failed", f"not signed: {shown} is not what training writes")
    try:
        sig = sign_artifact(committed, key)
        public = _public_pem(key)
    except GitOpsLabError as error:
        return Check(name, "failed", error.one_line())
    shutil.copyfile(sig, signature_path(trained))
    return Check(name, "passed", f"{sig.relative_to(ctx.repo)} (model-signing, key {key_id(public)[:16]})")


def _public_pem(private_key: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key.read_bytes(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def unit_tests(ctx: StageContext) -> list[Check]:
    folder = ctx.repo / "ci" / "tests"
    suite = unittest.defaultTestLoader.discover(str(folder), top_level_dir=str(folder))
    names: list[str] = []

    def collect(item: unittest.TestSuite | unittest.TestCase) -> None:
        if isinstance(item, unittest.TestSuite):
            for sub in item:
                collect(sub)
        else:
            names.append(item.id())

    collect(suite)
    if not names:
        return [Check(f"unit tests in {folder.relative_to(ctx.repo)}", "failed", "no test found (test_*.py)")]
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = {test.id(): text.strip().splitlines()[-1] for test, text in (*result.failures, *result.errors)}
    skipped = {test.id(): reason for test, reason in result.skipped}
    # A module that fails to import shows up as one error named after the module.
    names += [name for name in failed if name not in names]
    return [
        Check(name, "failed", failed[name])
        if name in failed
        else Check(name, "skipped", skipped[name])
        if name in skipped
        else Check(name, "passed")
        for name in names
    ]


def integration_tests(ctx: StageContext) -> list[Check]:
    return check_served_artifact(ctx.repo / "base" / "server.py", ctx.candidate_artifact())


def evaluation(ctx: StageContext) -> list[Check]:
    path = ctx.candidate_artifact()
    artifact = json.loads(path.read_text(encoding="utf-8"))
    value = metrics(artifact["model"], held_out_rows())[EVAL_METRIC]
    print(f"{path.name}: {EVAL_METRIC} {value:.4f} on the held-out split (threshold {EVAL_THRESHOLD})")
    recomputed = Check(
        f"{EVAL_METRIC} of the trained artifact >= {EVAL_THRESHOLD}",
        "passed" if value >= EVAL_THRESHOLD else "failed",
        f"{EVAL_METRIC} {value:.4f}",
    )
    # The team's own gates (gates.yaml `custom:`, required for staging) judge the model here too.
    return [recomputed, _gate(ctx, "model-eval", with_custom=True)]


def security(ctx: StageContext) -> list[Check]:
    """Secret scan, dependency audit and its SBOM, manifest policy.

    gitleaks and osv-scanner are separate installs (scripts/install-ci-tools): each is found the way its gate
    finds it. Without gitleaks only a pattern scan of the tree runs; without osv-scanner nothing is audited.
    Either way a `skipped` check says what did not run, so a runner without the scanners never shows a clean pass.
    """
    return [
        *_secret_scan(ctx),
        *_dependency_audit(ctx),
        *(_gate(ctx, "policy", target) for target in ("staging", "prod")),
    ]


def _secret_scan(ctx: StageContext) -> list[Check]:
    if secret_scan.find_scanner() is not None:
        # gitleaks over every commit (or gates.yaml's range) and the working tree; exceptions need a reason.
        return [_gate(ctx, "secret-scan")]
    not_run = Check(
        "secret scan: gitleaks",
        "skipped",
        f"gitleaks is not installed ({secret_scan.INSTALL_FIX}): the commits were NOT scanned; "
        f"only a pattern scan of the working tree ran (next check)",
    )
    return [not_run, _pattern_scan(ctx)]


def _pattern_scan(ctx: StageContext) -> Check:
    found = []
    # The pipeline's own virtual environment and artifacts are not the repository's content.
    skipped = [ctx.artifacts, *(cfg.parent for cfg in ctx.repo.glob("*/pyvenv.cfg"))]
    for path in sorted(p for p in ctx.repo.rglob("*") if p.is_file() and ".git" not in p.parts):
        if any(folder in path.parents for folder in skipped):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for what, pattern in SECRET_PATTERNS.items():
            for number, line in enumerate(text.splitlines(), 1):
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(ctx.repo)}:{number} looks like {what}")
    kinds = ", ".join(what.removeprefix("an ").removeprefix("a ") for what in SECRET_PATTERNS)
    return Check(
        "secret scan: credential patterns in the working tree (gitleaks not installed)",
        "failed" if found else "passed",
        "; ".join(found) + "; remove them and rotate them"
        if found
        else f"no credentials found in the tree (only these patterns: {kinds})",
    )


def _dependency_audit(ctx: StageContext) -> list[Check]:
    try:
        lockfile = str(load_config(ctx.repo).settings["vuln-scan"].get("lockfile") or vuln_scan.DEFAULT_LOCKFILE)
    except GitOpsLabError:  # a damaged gates.yaml: the gates that read it say so
        lockfile = vuln_scan.DEFAULT_LOCKFILE
    if vuln_scan.find_scanner() is None:
        return [
            Check(
                "dependency audit: osv-scanner",
                "skipped",
                f"osv-scanner is not installed ({vuln_scan.INSTALL_FIX}): {lockfile} was NOT scanned "
                f"and no SBOM was written",
            )
        ]
    # osv-scanner over the lock file: the live OSV database, or $GITOPS_LAB_OSV_DB offline.
    audit = _gate(ctx, "vuln-scan")
    # The SBOM whatever the audit found: it records what the pipeline ships, findings included.
    out = ctx.artifacts / SBOM_FILE
    name = f"SBOM (CycloneDX) of {lockfile}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        count = vuln_scan.write_sbom(ctx.repo, out, lockfile)
    except vuln_scan.ScanError as error:
        return [audit, Check(name, "failed", error.one_line())]
    except OSError as error:
        return [audit, Check(name, "failed", f"cannot write {out}: {error.strerror or error}")]
    where = out.relative_to(ctx.repo) if out.is_relative_to(ctx.repo) else out
    print(f"{where}: CycloneDX SBOM of {lockfile}, {count} components")
    return [audit, Check(name, "passed", f"{where}: {count} components")]


def release(ctx: StageContext) -> list[Check]:
    if ctx.kubeconfig:
        return [_gitops_lab(ctx, "release", "--repo", str(ctx.repo), "--kubeconfig", ctx.kubeconfig)]
    if ctx.model_server_url:
        return [
            _gitops_lab(
                ctx,
                "verify",
                "--repo",
                str(ctx.repo),
                "--env",
                ctx.candidate_env,
                "--version",
                ctx.version,
                "--url",
                ctx.model_server_url,
            )
        ]
    return [
        Check(
            "release with verification",
            "skipped",
            "no cluster (GITOPS_LAB_KUBECONFIG) and no model server (MODEL_SERVER_URL) to verify",
        )
    ]


STAGES: dict[str, Callable[[StageContext], list[Check]]] = {
    "data-preparation": data_preparation,
    "data-validation": data_validation,
    "training": training,
    "unit-tests": unit_tests,
    "integration-tests": integration_tests,
    "evaluation": evaluation,
    "security": security,
    "release": release,
}

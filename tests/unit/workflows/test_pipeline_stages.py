"""The platform pipeline's stages (python -m gitops_lab.pipeline), run for real on a seeded lab repository,
and the platform repository they come with (ml-platform-pipelines at v1.0.0).

The security stage runs the real gitleaks and osv-scanner (scripts/install-ci-tools builds them); a test that
needs one skips, saying so, where it is not installed. osv-scanner reads the tests' offline advisory database
(tests/testdata/osv), never api.osv.dev.
"""

from __future__ import annotations

import json
import os
import random
import re
import string
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml
from helpers.paths import REPO
from helpers.gitutil import git
from helpers.osvdb import build_osv_db
from helpers.segment_gate import V6_FAILS, require_segment_gate

from gitops_lab.adapters.repo.platform import seed_platform
from gitops_lab.gates import secret_scan, vuln_scan
from gitops_lab.pipeline.stages import SBOM_FILE, STAGES

SRC = REPO / "src"
PLATFORM = REPO / "platform"

needs_gitleaks = pytest.mark.skipif(
    secret_scan.find_scanner() is None,
    reason="gitleaks is not installed (run scripts/install-ci-tools, or put it on PATH)",
)
needs_osv_scanner = pytest.mark.skipif(
    vuln_scan.find_scanner() is None,
    reason="osv-scanner is not installed (run scripts/install-ci-tools, or put it on PATH)",
)
CURRENT_PYYAML = "PyYAML==6.0.4 \\\n    --hash=sha256:622aa875fa6533f25fedcffe23079357d65a690d462200afed5d8e9d0e01ebee"
VULNERABLE_PYYAML = (
    "PyYAML==5.3.1 \\\n    --hash=sha256:b8eac752c5e14d3eca0e6dd9199cd627518cb5ec06add0de9d32baeee6fe645d"
)
ADVISORY = "PYSEC-2021-142 (CVE-2020-14343, GHSA-8q59-q68h-6hv4): pyyaml 5.3.1 in requirements.lock, fixed in 5.4"


@pytest.fixture(autouse=True)
def offline_advisories(tmp_path, monkeypatch) -> Path:
    """The security stage's vuln-scan reads the tests' real OSV subset, not api.osv.dev (no network here)."""
    db = build_osv_db(tmp_path / "osv-db")
    monkeypatch.setenv(vuln_scan.DB_VAR, str(db))
    return db


def stage(wc: Path, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("MODEL_SERVER_URL", None)
    env.pop("GITOPS_LAB_KUBECONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "gitops_lab.pipeline", name, *args],
        cwd=wc,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_stages_hand_each_other_artifacts_and_release_says_skipped_without_a_target(lab):
    wc, _ = lab
    for name in STAGES:
        result = stage(wc, name)
        out = result.stdout + result.stderr
        expected = "skipped" if name == "release" else "pass"
        assert result.returncode == 0 and f"STAGE {name}: {expected}" in out, out[-3000:]
    assert (wc / "ci-artifacts" / "data" / "dataset.json").is_file()
    assert (wc / "ci-artifacts" / "model" / "v2.json").read_bytes() == (wc / "base/models/v2.json").read_bytes()
    release = ET.parse(wc / "ci-artifacts" / "junit" / "release.xml").getroot()
    assert release.get("skipped") == "1" and release.get("failures") == "0"
    integration = ET.parse(wc / "ci-artifacts" / "junit" / "integration-tests.xml").getroot()
    assert int(integration.get("tests")) == 4 and integration.get("failures") == "0"


def junit(wc: Path, name: str) -> dict[str, tuple[str, str]]:
    """Each testcase of a stage's JUnit: name -> (passed, failed or skipped; the message)."""
    cases = {}
    for case in ET.parse(wc / "ci-artifacts" / "junit" / f"{name}.xml").getroot().iter("testcase"):
        outcome = next(iter(case), None)
        if outcome is None:
            cases[case.get("name", "")] = ("passed", "")
        else:
            status = "failed" if outcome.tag == "failure" else outcome.tag
            cases[case.get("name", "")] = (status, outcome.get("message", ""))
    return cases


def aws_key_id(seed: int = 1) -> str:
    """A made-up key in AWS's format, made at test time, so this project's tree never holds one."""
    rng = random.Random(seed)
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def plant_key(wc: Path) -> None:
    (wc / "ci" / "deploy.env").write_text(f"# deploy credentials\nAWS_ACCESS_KEY_ID={aws_key_id()}\n")
    git(wc, "add", "ci/deploy.env")
    git(wc, "commit", "-qm", "Add the deploy credentials")


def pin(wc: Path, old: str, new: str) -> None:
    lock = wc / "requirements.lock"
    assert old in lock.read_text()
    lock.write_text(lock.read_text().replace(old, new))
    git(wc, "commit", "-qam", f"Pin {new.split()[0]}")


@needs_osv_scanner
def test_the_security_stage_keeps_the_sbom_of_the_lock_and_lists_its_checks_in_junit(lab):
    wc, _ = lab
    result = stage(wc, "security")
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "STAGE security: pass" in result.stdout, out[-3000:]
    sbom = wc / "ci-artifacts" / "sbom" / "sbom.cdx.json"
    assert "ci-artifacts/sbom/sbom.cdx.json: CycloneDX SBOM of requirements.lock, 56 components" in out
    bom = json.loads(sbom.read_text())
    assert bom["bomFormat"] == "CycloneDX"

    def normal(name: str, version: str) -> str:
        return f"{re.sub(r'[-_.]+', '-', name).lower()}@{version}"

    lock = (wc / "requirements.lock").read_text().splitlines()
    pins = {normal(*line.split(" ")[0].split("==")) for line in lock if "==" in line}
    purls = {normal(*c["purl"].removeprefix("pkg:pypi/").split("@")) for c in bom["components"]}
    assert purls == pins and len(pins) == 56
    cases = junit(wc, "security")
    assert cases["vuln-scan gate (v2, dev -> staging)"] == ("passed", "")
    assert cases["SBOM (CycloneDX) of requirements.lock"] == ("passed", "")
    assert cases["policy gate (v2, dev -> staging)"] == ("passed", "")
    assert cases["policy gate (v2, dev -> prod)"] == ("passed", "")
    secret = "secret-scan gate (v2, dev -> staging)"
    if secret_scan.find_scanner() is not None:
        assert cases[secret] == ("passed", "")
    else:
        assert cases["secret scan: gitleaks"][0] == "skipped"


@needs_gitleaks
def test_the_security_stage_fails_on_a_committed_key_naming_file_line_and_rule(lab):
    wc, _ = lab
    plant_key(wc)
    result = stage(wc, "security")
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "STAGE security: FAIL" in result.stdout, out[-3000:]
    assert "ci/deploy.env:2 aws-access-token" in result.stdout
    status, message = junit(wc, "security")["secret-scan gate (v2, dev -> staging)"]
    assert status == "failed" and "ci/deploy.env:2 aws-access-token (working tree)" in message
    assert aws_key_id() not in out + (wc / "ci-artifacts" / "junit" / "security.xml").read_text()  # redacted


@needs_osv_scanner
def test_the_security_stage_fails_on_a_vulnerable_pin_naming_the_advisory(lab):
    wc, _ = lab
    pin(wc, CURRENT_PYYAML, VULNERABLE_PYYAML)
    result = stage(wc, "security")
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "STAGE security: FAIL" in result.stdout, out[-3000:]
    assert f"fail: {ADVISORY}" in result.stdout
    status, message = junit(wc, "security")["vuln-scan gate (v2, dev -> staging)"]
    assert status == "failed" and ADVISORY in message
    # The SBOM records what the pipeline ships, the vulnerable pin included.
    bom = json.loads((wc / "ci-artifacts" / "sbom" / "sbom.cdx.json").read_text())
    assert "pkg:pypi/pyyaml@5.3.1" in {c["purl"] for c in bom["components"]}


def test_without_the_scanners_the_security_stage_says_what_did_not_run_and_junit_marks_it_skipped(lab, tmp_path):
    """Each scanner's variable names a file that is not there: the gates find neither (and never look on PATH)."""
    wc, _ = lab
    missing = {
        secret_scan.SCANNER_VAR: str(tmp_path / "no-gitleaks"),
        vuln_scan.SCANNER_VAR: str(tmp_path / "no-osv-scanner"),
    }
    result = stage(wc, "security", env=missing)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "SKIPPED  secret scan: gitleaks: gitleaks is not installed" in result.stdout
    assert "the commits were NOT scanned; only a pattern scan of the working tree ran" in result.stdout
    assert "SKIPPED  dependency audit: osv-scanner: osv-scanner is not installed" in result.stdout
    assert "requirements.lock was NOT scanned and no SBOM was written" in result.stdout
    assert "STAGE security: pass (2 of 5 checks skipped: secret scan: gitleaks; dependency audit: osv-scanner)" in (
        result.stdout
    )
    assert not (wc / "ci-artifacts" / "sbom").exists()
    suite = ET.parse(wc / "ci-artifacts" / "junit" / "security.xml").getroot()
    assert suite.get("skipped") == "2" and suite.get("failures") == "0" and suite.get("tests") == "5"
    cases = junit(wc, "security")
    assert cases["secret scan: gitleaks"][0] == "skipped"
    assert cases["dependency audit: osv-scanner"][0] == "skipped"
    assert cases["secret scan: credential patterns in the working tree (gitleaks not installed)"][0] == "passed"

    # The pattern scan still catches the obvious: a key fails the stage, naming file and line.
    plant_key(wc)
    result = stage(wc, "security", env=missing)
    assert result.returncode == 1 and "STAGE security: FAIL (1 of 5 checks failed)" in result.stdout
    assert "ci/deploy.env:2 looks like an AWS access key" in result.stdout


def test_a_drifted_model_fails_data_validation(lab):
    wc, _ = lab
    path = wc / "overlays" / "dev" / "kustomization.yaml"
    path.write_text(path.read_text().replace("model-version: v2", "model-version: v3"))
    git(wc, "commit", "-qam", "Try v3")
    assert stage(wc, "data-preparation").returncode == 0
    result = stage(wc, "data-validation")
    assert result.returncode == 1
    assert "STAGE data-validation: FAIL" in result.stdout and "temperature_c drift" in result.stdout + result.stderr


def test_a_model_a_custom_gate_rejects_fails_evaluation_and_passes_without_it(lab):
    """v6 is good overall and bad on cool pumps: the built-in gates let it through; the segment gate
    the team requires for staging (gates.yaml `custom:`) stops it at the evaluation stage."""
    wc, _ = lab
    path = wc / "overlays" / "dev" / "kustomization.yaml"
    path.write_text(path.read_text().replace("model-version: v2", "model-version: v6"))
    git(wc, "commit", "-qam", "Try v6")
    for name in ("data-preparation", "training"):
        assert stage(wc, name).returncode == 0, name
    result = stage(wc, "evaluation")
    assert result.returncode == 0 and "STAGE evaluation: pass" in result.stdout, result.stdout[-3000:]

    require_segment_gate(wc)
    result = stage(wc, "evaluation")
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "STAGE evaluation: FAIL" in result.stdout, out[-3000:]
    assert V6_FAILS in out


def test_a_stage_without_its_handoff_fails_and_a_stage_left_out_says_skipped(lab):
    wc, _ = lab
    result = stage(wc, "evaluation")
    assert result.returncode == 1 and "model/v2.json is missing: the training stage writes it" in result.stdout
    result = stage(wc, "training", "--only", "data-preparation,evaluation")
    assert result.returncode == 0 and "STAGE training: skipped (not among the stages" in result.stdout
    assert stage(wc, "training", "--only", "nope").returncode == 2


def test_the_platform_repository_is_released_at_v1_0_0_with_pinned_reusable_templates(tmp_path):
    remote = tmp_path / "ml-platform-pipelines.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    assert seed_platform(str(remote)) == "seeded"
    assert seed_platform(str(remote)) == "reused"

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", str(remote), "show", f"v1.0.0:{path}"], capture_output=True, text=True, check=True
        ).stdout

    workflow = yaml.safe_load(show(".github/workflows/ml-pipeline.yml"))
    call = workflow[True]["workflow_call"]  # PyYAML reads the key `on` as True
    assert {"python-version", "runner-labels", "stages", "tooling-source"} <= set(call["inputs"])
    assert call["inputs"]["tooling-source"]["required"] is True
    assert set(STAGES) <= set(call["outputs"])
    # runners.yml is read at platform-ref (a called workflow has no context naming its own ref): the release's tag.
    assert call["inputs"]["platform-ref"]["default"] == "v1.0.0"
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    spec, jobs = yaml.safe_load_all(show("templates/ml-pipeline.yml"))
    assert {"stage", "stages", "image", "runner-tags", "tooling-source"} <= set(spec["spec"]["inputs"])
    assert re.search(r"@sha256:[0-9a-f]{64}$", spec["spec"]["inputs"]["image"]["default"])
    assert "stages" not in jobs
    assert sorted(name for name in jobs if not name.startswith(".")) == sorted(f"ml-pipeline-{s}" for s in STAGES)
    runners = yaml.safe_load(show("runners.yml"))[".ml-platform-runner"]
    assert runners["image"] == spec["spec"]["inputs"]["image"]["default"]
    assert runners["tags"] == spec["spec"]["inputs"]["runner-tags"]["default"]
    requests = {k: v for k, v in runners["variables"].items() if k.startswith("KUBERNETES_")}
    assert requests and requests.items() <= jobs[".ml-pipeline-job"]["variables"].items()


def test_both_templates_keep_the_security_stages_sbom_as_an_artifact():
    sbom = f"ci-artifacts/{SBOM_FILE}"
    workflow = yaml.safe_load((PLATFORM / ".github" / "workflows" / "ml-pipeline.yml").read_text())
    uploads = [
        step["with"] for step in workflow["jobs"]["security"]["steps"] if "upload-artifact" in step.get("uses", "")
    ]
    assert {"name": "ci-artifacts-security", "path": "ci-artifacts"} in uploads
    assert {"name": "sbom", "path": sbom, "if-no-files-found": "warn"} in uploads
    _, jobs = yaml.safe_load_all((PLATFORM / "templates" / "ml-pipeline.yml").read_text())
    kept = jobs["ml-pipeline-security"]["artifacts"]
    assert kept["when"] == "always" and kept["paths"] == ["ci-artifacts/"]
    assert kept["reports"] == {"junit": "ci-artifacts/junit/*.xml", "cyclonedx": sbom}


def test_repo_init_seeds_the_platform_repository_and_names_a_missing_one(tmp_path, cli):
    remote, platform = tmp_path / "lab.git", tmp_path / "ml-platform-pipelines.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(remote)], check=True)
    result = cli("repo", "init", str(tmp_path / "wc"), "--remote", str(remote), "--platform-remote", str(platform))
    assert result.exit_code != 0
    assert f"the remote {platform} is not a Git repository" in result.stderr and "git init --bare" in result.stderr
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(platform)], check=True)
    result = cli("repo", "init", str(tmp_path / "wc"), "--remote", str(remote), "--platform-remote", str(platform))
    assert result.exit_code == 0, result.output
    assert f"Platform repository {platform}: seeded (tag v1.0.0)" in result.stdout
    tags = subprocess.run(["git", "ls-remote", "--tags", str(platform)], capture_output=True, text=True).stdout
    assert "refs/tags/v1.0.0" in tags


def test_training_signs_with_the_learners_key_and_the_policy_gate_refuses_the_artifact_tampered(tmp_path, monkeypatch):
    """`models keygen` makes and trusts the learner's key; the training stage with MODEL_SIGNING_KEY signs the
    candidate (checked here with the model-signing library itself); the security stage's policy gate passes it,
    and refuses it once its bytes change."""
    from model_signing import verifying

    from gitops_lab.adapters.repo.layout import RepoLayout
    from helpers.labenv import seeded_lab_env

    cli, wc, _ = seeded_lab_env(tmp_path, monkeypatch)
    made = cli("models", "keygen", "--repo", str(wc), "--output", "json")
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    version = RepoLayout(wc).model_version("dev")
    committed = wc / "base" / "models" / f"{version}.json"
    trained = wc / "ci-artifacts" / "model" / f"{version}.json"
    assert stage(wc, "data-preparation").returncode == 0

    run = stage(wc, "training", env={"MODEL_SIGNING_KEY": key["key_file"]})

    assert run.returncode == 0, run.stdout + run.stderr
    assert f"base/models/{version}.json signed with $MODEL_SIGNING_KEY: base/models/{version}.json.sig" in run.stdout
    assert f"(model-signing, key {key['key_id'][:16]})" in run.stdout
    public = wc / key["public_key"]
    for artifact in (committed, trained):  # the bundle beside the committed file, and the handed-off copy
        verifying.Config().use_elliptic_key_verifier(public_key=public).verify(artifact, Path(f"{artifact}.sig"))
    passed = stage(wc, "security")
    policy = [line for line in passed.stdout.splitlines() if "policy gate" in line]
    assert len(policy) == 2 and all(line.strip().startswith("PASSED") for line in policy), passed.stdout

    artifact = json.loads(committed.read_text(encoding="utf-8"))
    artifact["description"] = artifact.get("description", "") + " (edited after signing)"
    committed.write_text(json.dumps(artifact, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="(?i)mismatch"):
        verifying.Config().use_elliptic_key_verifier(public_key=public).verify(committed, Path(f"{committed}.sig"))
    refused = stage(wc, "security")

    assert refused.returncode == 1, refused.stdout
    policy = [line for line in refused.stdout.splitlines() if "policy gate" in line]
    assert len(policy) == 2 and all(line.strip().startswith("FAILED") for line in policy), refused.stdout
    assert f"base/models/{version}.json was changed after it was signed" in policy[0]


def test_training_with_a_signing_key_that_is_not_one_fails_naming_it(lab, tmp_path):
    wc, _ = lab
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("not a key\n", encoding="utf-8")
    assert stage(wc, "data-preparation").returncode == 0
    run = stage(wc, "training", env={"MODEL_SIGNING_KEY": str(bad)})
    assert run.returncode == 1
    assert f"cannot use {bad} as a signing key" in run.stdout


def test_the_github_workflow_hands_the_model_signing_key_secret_to_training_only(tmp_path):
    """A caller's secret MODEL_SIGNING_KEY (the PEM text) reaches the training stage as the file the stage reads
    (MODEL_SIGNING_KEY names it, readable by the runner's user only); without the secret nothing is set."""
    workflow = yaml.safe_load((PLATFORM / ".github" / "workflows" / "ml-pipeline.yml").read_text())
    secret = workflow[True]["workflow_call"]["secrets"]["MODEL_SIGNING_KEY"]
    assert secret["required"] is False
    jobs = workflow["jobs"]
    [step] = [s for s in jobs["training"]["steps"] if s.get("id") == "stage"]
    assert step["env"] == {"SIGNING_KEY_CONTENT": "${{ secrets.MODEL_SIGNING_KEY }}"}
    others = [name for name, job in jobs.items() if name != "training" and "MODEL_SIGNING_KEY" in json.dumps(job)]
    assert others == []
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"  # the stage's python: shows what it was given
    fake.write_text(
        '#!/bin/sh\necho "key=${MODEL_SIGNING_KEY:-none}"\n[ -n "$MODEL_SIGNING_KEY" ] && cat "$MODEL_SIGNING_KEY"\necho "STAGE training: pass"\n'
    )
    fake.chmod(0o755)
    pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----"

    def run(content: str) -> str:
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "RUNNER_TEMP": str(tmp_path),
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            "STAGES": "all",
            "SIGNING_KEY_CONTENT": content,
        }
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, check=True)
        return proc.stdout

    out = run(pem)
    key = tmp_path / "model-signing.key"
    assert f"key={key}\n{pem}\n" in out
    assert key.stat().st_mode & 0o077 == 0
    key.unlink()
    assert "key=none" in run("") and not key.exists()

"""The gates on real inputs: the shipped v1/v2/v3 artifacts, rendered overlays, gates.yaml.

Each gate must pass on good input and fail, naming what it found, on bad input.
No Git here (except where a gate reads it): a copy of the environments template.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from gitops_lab.adapters.renderer import KUSTOMIZE_VAR
from gitops_lab.errors import PreflightError, RepoStateError, UsageError
from gitops_lab.gates import GATES, GateResult, gate_trailers, load_config, run_gates, trailer_key
from gitops_lab.gates import data_quality, policy
from gitops_lab.resources import environments_template
from helpers.renderer import needs_kustomize


@pytest.fixture
def tree(tmp_path) -> Path:
    """The seeded repository's files (no Git): gates.yaml, base/, overlays/."""
    root = tmp_path / "repo"
    shutil.copytree(environments_template(), root)
    return root


def one(results: list[GateResult], name: str) -> GateResult:
    [found] = [r for r in results if r.name == name]
    return found


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def edit_artifact(root: Path, version: str, change) -> None:
    path = root / "base" / "models" / f"{version}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# --------------------------------------------------------------------------- #
# data-quality
# --------------------------------------------------------------------------- #
def test_reference_is_the_shipped_clean_dataset():
    ref = data_quality.reference_stats()
    assert ref["rows_read"] == 400 and ref["prepared_rows"] == ref["training_rows"] == 385
    assert 67 < ref["feature_means"]["temperature_c"] < 69  # Celsius


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_data_quality_passes_clean_training_data(tree, version):
    [result] = run_gates(tree, "dev", "staging", version, only=["data-quality"])
    assert result.passed, result.details
    assert result.summary.startswith("269 rows, 3.8% dropped, max drift 0.10 sd")
    assert all(line.startswith("pass: ") for line in result.details)


def test_data_quality_fails_v3_on_temperature_drift_only(tree):
    [result] = run_gates(tree, "dev", "staging", "v3", only=["data-quality"])
    assert not result.passed
    failed = [line for line in result.details if line.startswith("fail: ")]
    assert failed and all(line.startswith("fail: temperature_c drift") for line in failed), failed
    assert "shift 9.52 sd (max 0.25)" in result.summary
    # The other three sensors did not drift.
    for feature in ("vibration_mm_s", "pressure_bar", "rpm"):
        assert any(line.startswith(f"pass: {feature} drift") for line in result.details)


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda dq: dq.update(training_rows=50), "training rows 50 (min 200)"),
        (lambda dq: dq.update(null_rows=40), "null or invalid rows 11.2% of rows read (max 5.0%)"),
        (lambda dq: dq.update(positive_rate=0.93), "positive rate 0.93 (bounds 0.2-0.8)"),
        (lambda dq: dq["feature_means"].update(rpm=1800.0), "rpm drift: mean 1800"),
        (lambda dq: dq["feature_means"].pop("pressure_bar"), "pressure_bar: no mean or std recorded"),
    ],
    ids=["too-few-rows", "too-many-nulls", "label-imbalance", "rpm-drift", "missing-feature"],
)
def test_data_quality_fails_each_bad_statistic(tree, change, words):
    edit_artifact(tree, "v2", lambda a: change(a["training"]["data_quality"]))
    [result] = run_gates(tree, "dev", "staging", "v2", only=["data-quality"])
    assert not result.passed
    assert any(words in line for line in result.details if line.startswith("fail: ")), result.details


def test_data_quality_fails_without_recorded_statistics(tree):
    edit_artifact(tree, "v2", lambda a: a["training"].pop("data_quality"))
    [result] = run_gates(tree, "dev", "staging", "v2", only=["data-quality"])
    assert not result.passed and "records no training data statistics" in result.summary


def test_data_quality_thresholds_come_from_gates_yaml(tree):
    def loosen(cfg):
        cfg["data-quality"]["max_mean_shift"] = 20
        cfg["data-quality"]["max_psi"] = 20

    edit_yaml(tree / "gates.yaml", loosen)
    [result] = run_gates(tree, "dev", "staging", "v3", only=["data-quality"])
    assert result.passed, result.details


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    assert data_quality.psi(68, 9, 68, 9) == pytest.approx(0, abs=1e-9)
    assert data_quality.psi(68, 9, 70, 9) < 0.1
    assert data_quality.psi(68, 9, 154.4, 16.2) > 5


# --------------------------------------------------------------------------- #
# model-eval
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("version,summary", [("v1", "accuracy 0.7069 >= 0.65"), ("v2", "accuracy 0.8276 >= 0.65")])
def test_model_eval_passes_good_models(tree, version, summary):
    [result] = run_gates(tree, "dev", "staging", version, only=["model-eval"])
    assert result.passed and result.summary == summary, result.details


def test_model_eval_fails_v3_below_threshold(tree):
    [result] = run_gates(tree, "dev", "staging", "v3", only=["model-eval"])
    assert not result.passed
    assert result.summary.startswith("accuracy 0.5172 < 0.65")


def test_model_eval_catches_an_edited_metric(tree):
    edit_artifact(tree, "v3", lambda a: a["metrics"].update(accuracy=0.91))
    [result] = run_gates(tree, "dev", "staging", "v3", only=["model-eval"])
    assert not result.passed
    assert "recorded accuracy 0.91 does not match 0.5172 recomputed on the held-out split" in result.summary


def test_model_eval_min_score_from_gates_yaml(tree):
    edit_yaml(tree / "gates.yaml", lambda cfg: cfg["model-eval"].update(min_score=0.75))
    results = {v: run_gates(tree, "dev", "staging", v, only=["model-eval"])[0] for v in ("v1", "v2")}
    assert not results["v1"].passed and results["v1"].summary.startswith("accuracy 0.7069 < 0.75")
    assert results["v2"].passed


def _put_v2_in_prod(root: Path) -> None:
    from gitops_lab.adapters.repo import RepoLayout

    RepoLayout(root).set_model_version("prod", "v2")


@pytest.mark.parametrize(
    "mode,passed,words",
    [
        ("fail", False, "fail: accuracy 0.7069 worse than v2 (0.8276), which prod runs now"),
        ("warn", True, "warn: accuracy 0.7069 worse than v2 (0.8276), which prod runs now"),
        ("off", True, None),
    ],
)
def test_model_eval_regression_rule_is_configurable(tree, mode, passed, words):
    _put_v2_in_prod(tree)
    edit_yaml(tree / "gates.yaml", lambda cfg: cfg["model-eval"].update(regression=mode))
    [result] = run_gates(tree, "staging", "prod", "v1", only=["model-eval"])
    assert result.passed is passed, result.details
    if words:
        assert words in result.details
    else:
        assert not any("worse" in line for line in result.details)
    if mode == "warn":
        assert "warning: worse than v2 in prod" in result.summary


# --------------------------------------------------------------------------- #
# policy
# --------------------------------------------------------------------------- #
@needs_kustomize
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_policy_passes_the_shipped_overlays(tree, env):
    [result] = run_gates(tree, "dev", env, "v2", only=["policy"])
    assert result.passed, result.details
    assert result.summary == "6 objects, no violations"


@needs_kustomize
def test_policy_renders_the_candidate_in_a_copy(tree):
    before = (tree / "overlays" / "prod" / "kustomization.yaml").read_text()
    objects = policy.render(tree, "prod", "v3")
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["metadata"]["labels"]["gitops-lab.io/model-version"] == "v3"
    assert deployment["metadata"]["namespace"] == "ml-prod"
    assert (tree / "overlays" / "prod" / "kustomization.yaml").read_text() == before


def _patch_container(tree: Path, env: str, container_patch: dict, pod_patch: dict | None = None) -> None:
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "model-server"},
        "spec": {
            "template": {"spec": {**(pod_patch or {}), "containers": [{"name": "model-server", **container_patch}]}}
        },
    }
    (tree / "overlays" / env / "tamper.yaml").write_text(yaml.safe_dump(patch))
    edit_yaml(
        tree / "overlays" / env / "kustomization.yaml",
        lambda k: k.setdefault("patches", []).append({"path": "tamper.yaml"}),
    )


DEPLOYMENT = "Deployment/model-server container model-server"
TAMPERED = [
    ({"securityContext": {"privileged": True}}, None, f"{DEPLOYMENT}: privileged: true"),
    ({"securityContext": {"allowPrivilegeEscalation": True}}, None, f"{DEPLOYMENT}: allowPrivilegeEscalation: true"),
    ({"image": "python:latest"}, None, f"{DEPLOYMENT}: image python:latest is not pinned by @sha256 digest"),
    ({"resources": {"limits": {"cpu": None, "memory": "128Mi"}}}, None, f"{DEPLOYMENT}: resources not set: limits.cpu"),
    (
        {"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]},
        None,
        f"{DEPLOYMENT}: env DB_PASSWORD has a literal value; use valueFrom.secretKeyRef",
    ),
    ({}, {"hostNetwork": True}, "Deployment/model-server: hostNetwork: true"),
    (
        {},
        {"volumes": [{"name": "host", "hostPath": {"path": "/var/run"}}]},
        "Deployment/model-server: volume host is a hostPath (/var/run)",
    ),
]


@needs_kustomize
@pytest.mark.parametrize(
    "container_patch,pod_patch,violation",
    TAMPERED,
    ids=["privileged", "escalation", "latest-tag", "missing-limit", "password-env", "host-network", "host-path"],
)
def test_policy_fails_a_tampered_overlay_naming_the_object(tree, container_patch, pod_patch, violation):
    _patch_container(tree, "prod", container_patch, pod_patch)
    [result] = run_gates(tree, "staging", "prod", "v2", only=["policy"])
    assert not result.passed
    assert result.details == [f"fail: {violation}"]
    assert result.summary == f"1 violation: {violation}"
    # Other environments are not affected by prod's overlay.
    assert run_gates(tree, "dev", "staging", "v2", only=["policy"])[0].passed


@needs_kustomize
def test_policy_fails_a_secret_with_data_in_git(tree):
    (tree / "overlays" / "staging" / "secret.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "db"},
                "stringData": {"password": "hunter2"},
            }
        )
    )
    edit_yaml(tree / "overlays" / "staging" / "kustomization.yaml", lambda k: k["resources"].append("secret.yaml"))
    [result] = run_gates(tree, "dev", "staging", "v2", only=["policy"])
    assert not result.passed
    assert result.details == [
        "fail: Secret/db: Secret with plaintext data in Git (password); encrypt it with the lab's key: `sops encrypt "
        "--in-place <the file of Secret/db>` in the lab repository (its .sops.yaml names the recipient), then commit "
        "the encrypted file"
    ]


@needs_kustomize
def test_policy_checks_can_be_turned_off_in_gates_yaml(tree):
    _patch_container(tree, "prod", {"image": "python:latest"})
    edit_yaml(tree / "gates.yaml", lambda cfg: cfg["policy"]["checks"].remove("image-digest"))
    assert run_gates(tree, "staging", "prod", "v2", only=["policy"])[0].passed


@needs_kustomize
def test_policy_fails_when_the_overlay_does_not_render(tree):
    edit_yaml(tree / "overlays" / "prod" / "kustomization.yaml", lambda k: k["resources"].append("missing.yaml"))
    [result] = run_gates(tree, "staging", "prod", "v2", only=["policy"])
    assert not result.passed
    assert result.summary.startswith("overlays/prod does not render with v2:") and "missing.yaml" in result.summary


def test_policy_without_kustomize_or_kubectl_says_how_to_fix(tree, monkeypatch, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(KUSTOMIZE_VAR, raising=False)
    with pytest.raises(PreflightError) as caught:
        run_gates(tree, "dev", "staging", "v2", only=["policy"])
    assert "neither `kustomize` nor `kubectl` is installed" in caught.value.one_line()
    assert "install kubectl" in caught.value.one_line()


def test_check_objects_covers_pods_cronjobs_and_init_containers():
    good = {
        "name": "c",
        "image": "x@sha256:" + "a" * 64,
        "resources": {"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"cpu": "1", "memory": "1Mi"}},
    }
    bad = {"name": "init", "image": "busybox", "resources": good["resources"]}
    objects = [
        {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [good], "hostPID": True}},
        {
            "kind": "CronJob",
            "metadata": {"name": "cj"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [bad], "containers": [good]}}}}},
        },
        {"kind": "Secret", "metadata": {"name": "empty"}},
        {"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"API_KEY": "not checked in config maps"}},
    ]
    settings = load_config(Path("/nonexistent")).settings["policy"]
    assert list(policy.check_objects(objects, settings)) == [
        "Pod/p: hostPID: true",
        "CronJob/cj container init: image busybox is not pinned by @sha256 digest",
    ]


@pytest.mark.parametrize(
    "name,flagged",
    [
        ("DB_PASSWORD", True),
        ("OPENAI_API_KEY", True),
        ("GITHUB_TOKEN", True),
        ("TOKENIZER_PATH", False),
        ("MODEL_DIR", False),
    ],
)
def test_secret_looking_env_names(name, flagged):
    words = load_config(Path("/nonexistent")).settings["policy"]["secret_env_names"]
    assert any(policy._names_secret(name, w) for w in words) is flagged


# --------------------------------------------------------------------------- #
# gates.yaml and run_gates
# --------------------------------------------------------------------------- #
def test_seeded_gates_yaml_is_the_shipped_default(tree):
    config = load_config(tree)
    assert config.source == "gates.yaml"
    assert config.required == {
        "dev": [],
        "staging": ["data-quality", "model-eval", "policy"],
        "prod": ["data-quality", "model-eval", "policy", "approval"],
    }
    assert "approval" not in config.skippable


def test_missing_gates_yaml_falls_back_to_the_shipped_gates(tree):
    (tree / "gates.yaml").unlink()
    config = load_config(tree)
    assert config.source == "defaults"
    assert config.required_for("prod") == ["data-quality", "model-eval", "policy", "approval"]


def test_partial_gates_yaml_merges_over_defaults(tree):
    (tree / "gates.yaml").write_text("required:\n  staging: [model-eval]\nmodel-eval:\n  min_score: 0.8\n")
    config = load_config(tree)
    assert config.required_for("staging") == ["model-eval"]
    assert config.required_for("prod")[-1] == "approval"
    assert config.settings["model-eval"]["min_score"] == 0.8
    assert config.settings["model-eval"]["regression"] == "fail"


def test_invalid_gates_yaml_reports_every_problem_at_once(tree):
    (tree / "gates.yaml").write_text(
        "required:\n  qa: [model-eval]\n  staging: [lint]\n"
        "data-quality:\n  max_psi: high\nmodel-eval:\n  regression: maybe\npolicy:\n  checks: [privileged, vibes]\n"
    )
    with pytest.raises(RepoStateError) as caught:
        load_config(tree)
    line = caught.value.one_line()
    for words in (
        "required.qa: unknown environment",
        "required.staging: unknown gate 'lint'",
        "data-quality.max_psi: expected a number",
        "model-eval.regression: expected one of fail, warn, off",
        "policy.checks: unknown check 'vibes'",
        "git checkout gitops-lab/seed -- gates.yaml",
    ):
        assert words in line, line


def test_gates_yaml_that_is_not_yaml_names_the_line(tree):
    (tree / "gates.yaml").write_text("required:\n  staging: [model-eval\n")
    with pytest.raises(RepoStateError, match=r"gates.yaml line \d+ is not valid YAML"):
        load_config(tree)


@needs_kustomize
def test_run_gates_selects_the_destinations_gates_in_order(tree):
    assert [r.name for r in run_gates(tree, "dev", "staging", "v2")] == ["data-quality", "model-eval", "policy"]
    assert run_gates(tree, "dev", "dev", "v3") == []
    edit_yaml(tree / "gates.yaml", lambda cfg: cfg["required"].update(staging=["policy", "model-eval"]))
    assert [r.name for r in run_gates(tree, "dev", "staging", "v2")] == ["policy", "model-eval"]


def test_run_gates_only_runs_exactly_the_named_gates(tree):
    results = run_gates(tree, "dev", "dev", "v3", only=["model-eval", "data-quality"])
    assert [r.name for r in results] == ["data-quality", "model-eval"]
    assert not any(r.passed for r in results)
    with pytest.raises(UsageError, match="unknown gate 'lint'"):
        run_gates(tree, "dev", "staging", "v2", only=["lint"])


def test_run_gates_defaults_to_the_source_version(tree):
    # dev runs v2 in the seed.
    [result] = run_gates(tree, "dev", "staging", only=["model-eval"])
    assert result.summary == "accuracy 0.8276 >= 0.65"


def test_trailers_of_verdicts():
    results = [
        GateResult("data-quality", True, "269 rows"),
        GateResult("model-eval", False, "accuracy 0.5172 < 0.65"),
        GateResult("policy", True, "skipped by alice", skipped=True),
    ]
    assert gate_trailers(results) == [
        ("Gate-Data-Quality", "pass (269 rows)"),
        ("Gate-Model-Eval", "fail (accuracy 0.5172 < 0.65)"),
        ("Gate-Policy", "skipped by alice"),
    ]
    assert [trailer_key(g) for g in GATES] == [
        "Gate-Data-Quality",
        "Gate-Model-Eval",
        "Gate-Policy",
        "Gate-Secret-Scan",
        "Gate-Vuln-Scan",
        "Gate-Approval",
    ]
    assert results[2].to_dict()["verdict"] == "skipped"

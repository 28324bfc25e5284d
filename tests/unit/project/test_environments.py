"""The GitOps repo template: every overlay renders, and says what it must."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from helpers.paths import REPO
from gitops_lab.resources import environments_template

ENVIRONMENTS = environments_template()  # as seeded: versions.yaml's pins filled in
BASE = ENVIRONMENTS / "base"
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed, so overlays cannot be rendered")

# The seed: what each environment runs right after `repo init`.
EXPECTED = {
    "dev": {"namespace": "ml-dev", "replicas": 1, "version": "v2"},
    "staging": {"namespace": "ml-staging", "replicas": 1, "version": "v1"},
    "prod": {"namespace": "ml-prod", "replicas": 2, "version": "v1"},
}
VERSION_LABEL = "gitops-lab.io/model-version"
# The contract with the Git core: exactly one such line per overlay.
VERSION_LINE = re.compile(r"^      gitops-lab\.io/model-version: (v[0-9]+)$", re.MULTILINE)
APP_LABELS = {
    "app.kubernetes.io/name": "model-server",
    "app.kubernetes.io/instance": "model-server",
    "app.kubernetes.io/component": "inference",
    "app.kubernetes.io/part-of": "gitops-lab",
    "app.kubernetes.io/managed-by": "kustomize",
}


def render(overlay: Path) -> list[dict]:
    """`kubectl kustomize` with its default load restrictions (LoadRestrictionsRootOnly)."""
    assert KUBECTL is not None  # callers are marked needs_kubectl
    result = subprocess.run([KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@lru_cache(maxsize=None)
def rendered(env: str) -> tuple[dict, ...]:
    return tuple(render(ENVIRONMENTS / "overlays" / env))


def one(docs, kind: str, name_prefix: str = "") -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, f"expected one {kind} {name_prefix}*, found {len(found)}"
    return found[0]


def container(docs) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


# --- the contract, read from the files (no kubectl needed) ---------------------


@pytest.mark.parametrize("env", EXPECTED)
def test_overlay_names_its_model_version_on_exactly_one_line(env):
    text = (ENVIRONMENTS / "overlays" / env / "kustomization.yaml").read_text(encoding="utf-8")
    assert VERSION_LINE.findall(text) == [EXPECTED[env]["version"]]
    assert text.count(VERSION_LABEL) == 1
    entries = [e for e in yaml.safe_load(text)["labels"] if VERSION_LABEL in e["pairs"]]
    assert len(entries) == 1
    assert entries[0]["includeTemplates"] is True
    assert entries[0]["includeSelectors"] is False
    assert (BASE / "models" / f"{EXPECTED[env]['version']}.json").is_file()


def test_template_has_no_placeholder_left():
    assert not (ENVIRONMENTS / ".keep").exists()


# --- rendered output ----------------------------------------------------------


@needs_kubectl
@pytest.mark.parametrize("env", EXPECTED)
def test_overlay_renders_namespace_replicas_and_version(env):
    docs = rendered(env)
    want = EXPECTED[env]
    namespace = one(docs, "Namespace")
    assert namespace["metadata"]["name"] == want["namespace"]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == want["namespace"], doc["metadata"]["name"]
    deployment = one(docs, "Deployment", "model-server")
    assert deployment["spec"]["replicas"] == want["replicas"]
    assert deployment["metadata"]["labels"][VERSION_LABEL] == want["version"]
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert template_labels[VERSION_LABEL] == want["version"]
    # The selector is immutable, so the version must never be part of it.
    assert VERSION_LABEL not in deployment["spec"]["selector"]["matchLabels"]
    env_vars = {e["name"]: e for e in container(docs)["env"]}
    assert env_vars["MODEL_VERSION"]["valueFrom"]["fieldRef"]["fieldPath"] == (f"metadata.labels['{VERSION_LABEL}']")
    assert env_vars["MODEL_DIR"]["value"] == "/models"


@needs_kubectl
@pytest.mark.parametrize("env", EXPECTED)
def test_deployment_is_probed_limited_and_locked_down(env):
    docs = rendered(env)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(docs)
    port = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port == {"http": 8080}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65534
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert re.fullmatch(r"docker\.io/library/python:[0-9.]+-slim@sha256:[0-9a-f]{64}", c["image"]), c["image"]
    assert c["command"] == ["python", "-u", "/app/server.py"]
    for doc in (deployment, deployment["spec"]["template"]):
        assert APP_LABELS.items() <= doc["metadata"]["labels"].items()


@needs_kubectl
@pytest.mark.parametrize("env", EXPECTED)
def test_pods_stop_gracefully_within_their_grace_period(env):
    """A rollout loses no request: the pod sleeps in preStop while it leaves the
    Service's endpoints, then the server drains; the kubelet's SIGKILL comes later."""
    docs = rendered(env)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    c = container(docs)
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float({e["name"]: e.get("value") for e in c["env"]}["DRAIN_SECONDS"])
    inflight_grace = float(re.search(r"^INFLIGHT_GRACE = (\S+)$", (BASE / "server.py").read_text(), re.M).group(1))
    assert pre_stop > 0 and drain > 0
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain + inflight_grace


@needs_kubectl
@pytest.mark.parametrize("env", EXPECTED)
def test_server_code_and_models_come_from_generated_configmaps(env):
    docs = rendered(env)
    code = one(docs, "ConfigMap", "model-server-code-")
    models = one(docs, "ConfigMap", "model-server-models-")
    assert code["data"]["server.py"] == (BASE / "server.py").read_text(encoding="utf-8")
    assert sorted(models["data"]) == sorted(p.name for p in (BASE / "models").glob("v*.json*"))  # with signatures
    assert f"{EXPECTED[env]['version']}.json" in models["data"]
    for name, body in models["data"].items():
        assert body == (BASE / "models" / name).read_text(encoding="utf-8")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v.get("configMap", {}).get("name") for v in pod["volumes"]}
    assert volumes["code"] == code["metadata"]["name"]
    assert volumes["models"] == models["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
    assert mounts["code"] == "/app" and mounts["models"] == "/models"


@needs_kubectl
@pytest.mark.parametrize("env", EXPECTED)
def test_service_sends_port_80_to_the_servers_port(env):
    docs = rendered(env)
    service = one(docs, "Service", "model-server")
    assert service["metadata"]["name"] == "model-server"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, "http")]
    template_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()


@needs_kubectl
def test_changing_the_version_line_changes_only_the_version(tmp_path):
    """What a promotion does: rewrite the one line; the render follows."""
    copy = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS, copy)
    kustomization = copy / "overlays" / "prod" / "kustomization.yaml"
    text = kustomization.read_text(encoding="utf-8")
    kustomization.write_text(VERSION_LINE.sub("      gitops-lab.io/model-version: v3", text), encoding="utf-8")
    before = rendered("prod")
    after = render(copy / "overlays" / "prod")
    deployment = one(after, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"][VERSION_LABEL] == "v3"
    assert deployment["spec"]["replicas"] == 2

    def without_version(docs):
        out = []
        for doc in docs:
            text = yaml.safe_dump(doc, sort_keys=True)
            out.append(text.replace(f"{VERSION_LABEL}: v3", "").replace(f"{VERSION_LABEL}: v1", ""))
        return out

    assert without_version(after) == without_version(before)


def test_the_model_server_image_pin_has_one_home_versions_yaml():
    from gitops_lab.resources import environments_source
    from gitops_lab.versions import pinned

    pin = pinned()["images"]["model_server"]
    assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}", pin)
    shipped = [p for p in REPO.glob("**/*.y*ml") if ".venv" not in p.parts and pin.split("@")[1] in p.read_text()]
    assert [p.relative_to(REPO).as_posix() for p in shipped] == ["src/gitops_lab/versions.yaml"]
    assert "${images.model_server}" in (environments_source() / "base" / "deployment.yaml").read_text()
    assert f"image: {pin}" in (BASE / "deployment.yaml").read_text()

"""`gitops-lab up` on a real kind cluster, as a learner runs it, for both engines (the kind bed).

Each engine gets one environment, brought up once with `--preload` and the
classroom's engine manifests (no registry is reachable here), then:
- the cluster, the engine, the Git server and all three environments are real
  and healthy, checked through the Kubernetes API;
- the model server pod answers /version and /predict with the version Git says;
- a learner clones and pushes through http://localhost:8180 with the printed credentials;
- `up` again changes nothing;
- every lab passes on real pods (`lab test --all`);
- `down` leaves no container, no docker network and no state but the backups.
Interrupting `up` with SIGINT at each of its steps, then running it again, is
tested in test_kind_interrupts.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from kindbed.fixtures import wait_for_free_lab_ports

pytestmark = pytest.mark.kind

UP_TIMEOUT = "900"


def _proxy(api, namespace: str, path: str, body: dict | None = None) -> dict:
    """GET or POST through the API server's service proxy (the path `verify` uses: no port-forward, no kubectl)."""
    from gitops_lab.kube.rest import request

    return request(
        api,
        "POST" if body else "GET",
        f"/api/v1/namespaces/{namespace}/services/model-server:http/proxy/{path}",
        body=body,
    )


@pytest.fixture(scope="module", params=["flux", "argocd"])
def lab_env(request, kind_bed):
    engine = request.param
    name = f"e2e-{engine}"
    wait_for_free_lab_ports()
    run = kind_bed.gitops_lab(
        "up",
        "--engine",
        engine,
        "--preload",
        "--engine-manifests",
        str(kind_bed.manifests),
        "--timeout",
        UP_TIMEOUT,
        "--output",
        "json",
        name=name,
    )
    yield kind_bed, name, engine, run
    kind_bed.gitops_lab("down", name=name, check=False)


def test_up_brings_every_environment_up_on_real_pods(lab_env):
    bed, name, engine, run = lab_env
    result = run.json()
    assert result["engine"] == engine
    assert result["clone_url"] == "http://localhost:8180/lab.git"
    assert {e["environment"]: (e["synced"], e["healthy"]) for e in result["environments"]} == {
        "dev": (True, True),
        "staging": (True, True),
        "prod": (True, True),
    }
    from kubernetes import client

    api = bed.api(name)
    nodes = client.CoreV1Api(api).list_node().items
    assert [n.metadata.name for n in nodes] == [f"{name}-control-plane"]
    for namespace in ("ml-dev", "ml-staging", "ml-prod"):
        pods = client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/name=model-server"
        )
        assert pods.items, f"no model server pod in {namespace}"
        for pod in pods.items:
            assert pod.status.phase == "Running"
            assert all(c.ready for c in pod.status.container_statuses)
    status = bed.gitops_lab("status", "--output", "json", name=name).json()
    assert {row["environment"]: row["ok"] for row in status} == {"dev": True, "staging": True, "prod": True}


def test_the_model_server_answers_with_the_version_git_says(lab_env):
    bed, name, _, run = lab_env
    versions = run.json()["versions"]
    api = bed.api(name)
    for env, namespace in (("dev", "ml-dev"), ("prod", "ml-prod")):
        served = _proxy(api, namespace, "version")
        assert served["loaded"] is True and served["model_version"] == versions[env]
        prediction = _proxy(
            api,
            namespace,
            "predict",
            {"instances": [{"temperature_c": 63.2, "vibration_mm_s": 5.05, "pressure_bar": 5.54, "rpm": 1417.0}]},
        )
        assert prediction["model_version"] == versions[env]
        assert len(prediction["predictions"]) == 1


def test_a_learner_clones_and_pushes_through_localhost_8180(lab_env, tmp_path):
    bed, name, _, _ = lab_env
    work, env, url = bed.learner_clone(name, tmp_path / "clone")
    assert (work / "overlays" / "prod" / "kustomization.yaml").is_file()
    (work / "NOTES.md").write_text("my lab notes\n")
    subprocess.run(["git", "-C", str(work), "add", "NOTES.md"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "Add notes"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"], check=True, env=env, timeout=120)
    head = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    remote = subprocess.run(["git", "ls-remote", url, "main"], capture_output=True, text=True, env=env, timeout=60)
    assert remote.stdout.split()[0] == head


def test_up_again_changes_nothing(lab_env):
    # after the learner's push above: up waits for what the remote has, and its working copy follows
    bed, name, engine, _ = lab_env
    again = bed.gitops_lab(
        "up", "--engine", engine, "--preload", "--engine-manifests", str(bed.manifests), "--output", "json", name=name
    ).json()
    assert again["changed"] == []
    assert (Path(again["repo_path"]) / "NOTES.md").is_file()


def test_every_lab_passes_on_real_pods(lab_env, tmp_path):
    bed, name, engine, _ = lab_env
    junit = tmp_path / "labs.xml"
    run = bed.gitops_lab(
        "lab", "test", "--all", "--engine", engine, "--junit", str(junit), name=name, check=False, timeout=3000
    )
    assert run.returncode == 0, f"lab test --all failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    text = junit.read_text()
    assert 'failures="0"' in text and "<testcase" in text
    # Real pods answer: nothing skips here, not the capstone, not gitops-basics' step that asks the model.
    assert not re.search(r'(failures|skipped)="[1-9]', text) and 'name="see-the-model-answer"' in text


def test_down_leaves_no_container_network_or_state_but_backups(lab_env):
    bed, name, _, _ = lab_env
    bed.gitops_lab("down", name=name)
    assert name not in bed.kind("get", "clusters").split()
    containers = bed.docker("ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={name}", "--format", "{{.Names}}")
    assert containers.strip() == ""
    networks = bed.docker("network", "ls", "--format", "{{.Name}}").split()
    assert "kind" not in networks
    left = sorted(p.name for p in (bed.home / "state" / name).iterdir())
    assert left == ["backups"]

"""`gitops-lab up` on a real kind cluster, as a learner runs it, for both engines (the kind bed).

Each engine gets one environment, brought up once with `--preload` and the
classroom's engine manifests (no registry is reachable here), then:
- the cluster, the engine, the Git server and all three environments are real
  and healthy, checked through the Kubernetes API;
- the model server pod answers /version and /predict with the version Git says;
- a learner clones and pushes through http://localhost:8180 with the printed credentials;
- `up` again changes nothing;
- every lab passes on real pods (`lab test --all`);
- a class of two runs beside the lab with its Git server in the cluster: a
  learner reaches only their own repository, and their promotion is served by
  real pods in their own namespaces;
- `down` leaves no container, no docker network and no state but the backups.
Interrupting `up` with SIGINT at each of its steps, then running it again, is
tested in test_kind_interrupts.py.
"""

from __future__ import annotations

import re
import subprocess
from xml.etree import ElementTree
from pathlib import Path

import pytest
from helpers.artifacts import artifacts_dir
from helpers.gitutil import run_git
from helpers.osvdb import build_osv_db

from gitops_lab.gates.vuln_scan import DB_VAR

from kindbed.fixtures import wait_for_free_lab_ports

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
    # The vuln-scan gate's advisories: the real OSV subset of the tests, offline (no network here).
    offline = {DB_VAR: str(build_osv_db(tmp_path / "osv-db"))}
    run = bed.gitops_lab(
        "lab",
        "test",
        "--all",
        "--engine",
        engine,
        "--junit",
        str(junit),
        name=name,
        check=False,
        timeout=3000,
        **offline,
    )
    # The real output, kept for the docs' transcripts (test-artifacts/, git-ignored).
    (artifacts_dir() / f"lab-test-all-{engine}.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"lab test --all failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    text = junit.read_text()
    assert 'failures="0"' in text and "<testcase" in text
    # Real pods answer: nothing skips here, not the capstone, not gitops-basics' step that asks the model,
    # but the one step that needs a forge (the built-in Git server has no pull requests; it passes on Gitea
    # in test_kind_gitea_e2e.py), skipped by name.
    assert not re.search(r'failures="[1-9]', text) and 'name="see-the-model-answer"' in text
    cases = ElementTree.fromstring(text).iter("testcase")
    skipped = [(c.get("name"), s.get("message", "")) for c in cases for s in c.findall("skipped")]
    assert [name for name, _ in skipped] == ["open-for-review"], skipped
    assert "needs a forge (Gitea)" in skipped[0][1]


def test_a_class_with_its_git_server_in_the_cluster_on_real_pods(lab_env, tmp_path):
    import json

    from kubernetes import client

    bed, name, engine, _ = lab_env
    created = bed.gitops_lab(
        "class", "create", "--count", "2", "--engine", engine, "--timeout", "600", "--output", "json", name=name
    ).json()
    assert created["learners"] == ["learner-01", "learner-02"] and created["git_enforces_access"] is True
    api = bed.api(name)
    core = client.CoreV1Api(api)
    git_namespace = f"{name}-class-git"
    pods = core.list_namespaced_pod(git_namespace, label_selector="app.kubernetes.io/name=gitserver").items
    assert [p.status.phase for p in pods] == ["Running"]

    kits = {learner: json.loads((Path(path) / "kit.json").read_text()) for learner, path in created["kits"].items()}
    a, b = kits["learner-01"], kits["learner-02"]
    node_ip = core.list_node().items[0].status.addresses[0].address
    assert a["git_url"] == f"http://{node_ip}:30081/learner-01.git"
    assert created["git_server"] == f"http://{node_ip}:30081 (in the cluster: Service gitserver in {git_namespace})"
    assert a["engine_git_url"] == f"http://gitserver.{git_namespace}.svc.cluster.local:8080/learner-01.git"

    def url(kit: dict, repository: str) -> str:
        return f"http://{kit['git_username']}:{kit['git_password']}@{node_ip}:30081/{repository}.git"

    # A learner reaches their own repository over the NodePort, and not the other's.
    assert run_git("ls-remote", url(a, "learner-01"), "main").stdout.strip()
    work = tmp_path / "a"
    run_git("clone", "-q", url(a, "learner-01"), str(work))
    run_git("-c", "user.name=A", "-c", "user.email=a@example.com", "commit", "-q", "--allow-empty", "-m", "A", cwd=work)
    refused = run_git("push", url(a, "learner-02"), "HEAD:main", cwd=work, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    assert (
        run_git("ls-remote", url(b, "learner-02"), "main").stdout.split()[0]
        != run_git("rev-parse", "HEAD", cwd=work).stdout.strip()
    )
    # Their own platform repository (the ci-templates lab) beside it, at v1.0.0; the other's refuses them.
    assert a["platform_git_url"] == f"http://{node_ip}:30081/learner-01-ml-platform-pipelines.git"
    assert "refs/tags/v1.0.0" in run_git("ls-remote", "--tags", url(a, "learner-01-ml-platform-pipelines")).stdout
    refused = run_git("push", url(a, "learner-02-ml-platform-pipelines"), "HEAD:refs/heads/mine", cwd=work, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr

    # The learner joins with the kit and promotes; real pods in their namespace serve it, the other's do not change.
    learner = f"{name}-learner-01"
    bed.gitops_lab("class", "join", created["kits"]["learner-01"], name=learner)
    bed.gitops_lab("promote", "--from", "dev", "--to", "staging", "--timeout", "300", name=learner)
    assert _proxy(api, "learner-01-staging", "version")["model_version"] == "v2"
    assert _proxy(api, "learner-02-staging", "version")["model_version"] == "v1"
    rows = {r["learner"]: r for r in bed.gitops_lab("class", "status", "--output", "json", name=name).json()}
    assert rows["learner-01"]["environments"]["staging"]["version"] == "v2" and rows["learner-01"]["healthy"]
    assert rows["learner-02"]["environments"]["staging"]["version"] == "v1" and rows["learner-02"]["healthy"]

    # Delete: the repositories are kept as bundles, then the server and the tenants go.
    deleted = bed.gitops_lab("class", "delete", "--output", "json", name=name).json()
    assert len(deleted["backups"]) == 4  # each learner's lab and platform repository
    namespaces = {n.metadata.name for n in core.list_namespace().items}
    assert not namespaces & {git_namespace, "learner-01-dev", "learner-02-prod"}
    assert "ml-prod" in namespaces  # the lab of `up` is untouched


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

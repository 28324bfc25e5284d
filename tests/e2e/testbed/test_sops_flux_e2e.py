"""Secrets kept encrypted in Git, on the testbed's real Flux: `gitops-lab secrets init`, then a Secret that
only exists in Git as SOPS ciphertext (real sops, real age key) is decrypted by the real kustomize-controller
into a plain Secret; with the wrong key in the cluster the Kustomization reports the decryption failure and
`sync` says so."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.gitutil import git
from gitops_lab.gates.ci_tools import find_tool

SOPS = find_tool("sops", "GITOPS_LAB_SOPS") or ""  # "": not installed, the tests skip
KEYGEN = find_tool("age-keygen", "GITOPS_LAB_AGE_KEYGEN") or ""
API_KEY = "sk-model-server-0d6f3e2a9b"


def commit_encrypted_secret(repo: Path, value: str, message: str) -> None:
    """Write the Secret into overlays/dev, encrypt it in place with sops (.sops.yaml names the key), commit, push."""
    (repo / "overlays/dev/api-key.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "model-api-key", "namespace": "ml-dev"},
                "type": "Opaque",
                "stringData": {"API_KEY": value},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    subprocess.run([SOPS, "encrypt", "--in-place", "overlays/dev/api-key.yaml"], cwd=repo, env=env, check=True)
    assert value not in (repo / "overlays/dev/api-key.yaml").read_text()
    overlay = repo / "overlays/dev/kustomization.yaml"
    data = yaml.safe_load(overlay.read_text())
    if "api-key.yaml" not in data.get("resources", []):
        data["resources"] = [*data.get("resources", []), "api-key.yaml"]
        overlay.write_text(yaml.safe_dump(data, sort_keys=False))
    git(repo, "add", "overlays/dev")
    git(repo, "-c", "user.name=Learner", "-c", "user.email=learner@example.com", "commit", "--quiet", "-m", message)
    git(repo, "push", "--quiet", "origin", "HEAD:main")


@pytest.mark.skipif(not SOPS or not KEYGEN, reason="sops and age-keygen: run scripts/install-ci-tools")
@pytest.mark.parametrize("engine_on_testbed", ["flux"], indirect=True)
def test_flux_decrypts_a_sops_secret_from_git_and_fails_without_the_key(engine_on_testbed, tmp_path):
    from kubernetes import client

    from gitops_lab.state import load_state

    on_testbed, cli = engine_on_testbed, engine_on_testbed.cli
    assert on_testbed.up().exit_code == 0
    made = cli("secrets", "init", "--output", "json")
    assert made.exit_code == 0, made.output
    setup = json.loads(made.stdout)
    print("INIT:", made.stdout)
    key_file = Path(setup["key_file"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert setup["key_created"] and setup["commit"]
    assert set(setup["changed"]) == {
        "Secret/sops-age",
        *(f"Kustomization/gitops-lab-{env}" for env in ("dev", "staging", "prod")),
    }
    again = cli("secrets", "init", "--output", "json")  # a second run keeps the key and changes nothing
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) | {"key_created": True} == setup | {"commit": None, "changed": []}

    repo = Path(load_state().repo_path or "")
    assert yaml.safe_load(git(repo, "show", "origin/main:.sops.yaml"))["creation_rules"][0]["age"] == setup["recipient"]
    commit_encrypted_secret(repo, API_KEY, "Give the dev model server its API key (encrypted)")
    assert API_KEY not in git(repo, "show", "origin/main:overlays/dev/api-key.yaml")
    synced = cli("sync", "--env", "dev", "--timeout", "120")
    assert synced.exit_code == 0, synced.output

    with on_testbed.cluster.api_client() as api:
        core = client.CoreV1Api(api)
        served = core.read_namespaced_secret("model-api-key", "ml-dev")
        assert base64.b64decode(served.data["API_KEY"]).decode() == API_KEY
        assert "sops" not in (served.metadata.annotations or {})

        # The cluster loses the key: a key the file was not encrypted for replaces it.
        wrong = tmp_path / "wrong.agekey"
        subprocess.run([KEYGEN, "-o", str(wrong)], check=True, capture_output=True)
        core.patch_namespaced_secret(
            "sops-age", "flux-system", {"data": {"age.agekey": base64.b64encode(wrong.read_bytes()).decode()}}
        )
        commit_encrypted_secret(repo, API_KEY + "-rotated", "Rotate the dev API key")
        refused = cli("sync", "--env", "dev", "--timeout", "30")
        assert refused.exit_code == 3, refused.output
        last = refused.stderr.strip().splitlines()[-1]
        print("REFUSED:", last)
        assert last.startswith("error: dev: timed out after 30s waiting for Flux to apply"), last
        assert "Flux says:" in last and "decrypt" in last, last
        kustomization = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "kustomize.toolkit.fluxcd.io", "v1", "flux-system", "kustomizations", "gitops-lab-dev"
        )
        [ready] = [c for c in kustomization["status"]["conditions"] if c["type"] == "Ready"]
        assert ready["status"] == "False" and "decrypt" in ready["message"], ready
        # Nothing half-applied: the cluster still serves the last Secret it could decrypt.
        served = core.read_namespaced_secret("model-api-key", "ml-dev")
        assert base64.b64decode(served.data["API_KEY"]).decode() == API_KEY

"""Secrets kept encrypted in Git, on the testbed's real Flux: `gitops-lab secrets init`, then a Secret that
only exists in Git as SOPS ciphertext (real sops, real age key) is decrypted by the real kustomize-controller
into a plain Secret; with the wrong key in the cluster the Kustomization reports the decryption failure and
`sync` says so."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml

from helpers.gitutil import git
from helpers.sops_secrets import API_KEY, KEYGEN, SOPS, commit_encrypted_secret, wrong_key


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
        core.patch_namespaced_secret(
            "sops-age", "flux-system", {"data": {"age.agekey": base64.b64encode(wrong_key(tmp_path)).decode()}}
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

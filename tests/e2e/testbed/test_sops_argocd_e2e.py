"""Secrets kept encrypted in Git, on the testbed's real Argo CD: `gitops-lab secrets init` switches the lab's
Applications to the SOPS config-management plugin, and the real argocd-cmp-server (as the managed install's
sidecar runs it, beside the real repo-server) decrypts a Secret that only exists in Git as SOPS ciphertext
with the real sops; the real application-controller applies it. With the wrong key in the cluster, `sync`
says in one line which file could not be decrypted and how to fix it."""

from __future__ import annotations

import base64
import json

import pytest

from testbed.processes import wait_until

from helpers.sops_secrets import API_KEY, KEYGEN, SOPS, commit_encrypted_secret, wrong_key

ENVS = ("dev", "staging", "prod")


@pytest.mark.skipif(not SOPS or not KEYGEN, reason="sops and age-keygen: run scripts/install-ci-tools")
@pytest.mark.parametrize("engine_on_testbed", ["argocd"], indirect=True)
def test_argocd_decrypts_a_sops_secret_from_git_and_fails_without_the_key(engine_on_testbed, testbed_argocd, tmp_path):
    from kubernetes import client

    from gitops_lab.state import load_state
    from pathlib import Path

    on_testbed, cli = engine_on_testbed, engine_on_testbed.cli
    assert on_testbed.up().exit_code == 0
    with on_testbed.cluster.api_client() as api:
        custom = client.CustomObjectsApi(api)

        def app_source(env: str) -> dict:
            app = custom.get_namespaced_custom_object(
                "argoproj.io", "v1alpha1", "argocd", "applications", f"gitops-lab-{env}"
            )
            return app["spec"]["source"]

        # Before the key exists, Argo CD renders the overlays itself, as it always did.
        assert all("plugin" not in app_source(env) for env in ENVS)

    made = cli("secrets", "init", "--output", "json")
    assert made.exit_code == 0, made.output
    setup = json.loads(made.stdout)
    print("INIT:", made.stdout)
    assert setup["engine"] == "argocd" and "plugin gitops-lab-sops" in setup["decryption"], setup
    assert set(setup["changed"]) == {"Secret/sops-age", *(f"Application/gitops-lab-{env}" for env in ENVS)}
    again = cli("secrets", "init", "--output", "json")  # a second run keeps the key and changes nothing
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["changed"] == []
    # `up` again keeps the plugin (it registers with it once the key exists)
    assert on_testbed.up().exit_code == 0

    repo = Path(load_state().repo_path or "")
    commit_encrypted_secret(repo, API_KEY, "Give the dev model server its API key (encrypted)")
    synced = cli("sync", "--env", "dev", "--timeout", "120")
    assert synced.exit_code == 0, synced.output

    with on_testbed.cluster.api_client() as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        assert all(app_source(env)["plugin"] == {"name": "gitops-lab-sops"} for env in ENVS)
        served = core.read_namespaced_secret("model-api-key", "ml-dev")
        assert base64.b64decode(served.data["API_KEY"]).decode() == API_KEY
        assert "sops" not in json.dumps(served.metadata.annotations or {})

        # The cluster loses the key: a key the file was not encrypted for replaces it.
        wrong = wrong_key(tmp_path)
        core.patch_namespaced_secret("sops-age", "argocd", {"data": {"age.agekey": base64.b64encode(wrong).decode()}})
        # as the kubelet refreshes a mounted Secret, the testbed's copy follows within its period
        mounted = testbed_argocd.key_volume.folder / "age.agekey"
        wait_until("the sidecar's key folder to hold the new key", lambda: mounted.read_bytes() == wrong, 30)
        commit_encrypted_secret(repo, API_KEY + "-rotated", "Rotate the dev API key")
        refused = cli("sync", "--env", "dev", "--timeout", "30")
        assert refused.exit_code == 3, refused.output
        lines = refused.stderr.strip().splitlines()
        print("REFUSED:", lines[-1])
        assert [line for line in lines if line.startswith("error:")] == lines[-1:], lines
        assert lines[-1].startswith("error: dev: timed out after 30s waiting for Argo CD to sync"), lines[-1]
        assert "Argo CD says:" in lines[-1], lines[-1]
        assert "cannot decrypt overlays/dev/api-key.yaml" in lines[-1], lines[-1]
        assert "identity did not match any of the recipients" in lines[-1], lines[-1]
        assert "fix: run `gitops-lab secrets init`" in lines[-1], lines[-1]
        # Nothing half-applied: the cluster still serves the last Secret it could decrypt.
        served = core.read_namespaced_secret("model-api-key", "ml-dev")
        assert base64.b64decode(served.data["API_KEY"]).decode() == API_KEY

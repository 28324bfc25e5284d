"""Argo CD decrypts a SOPS Secret from Git on real kind: the managed install's plugin sidecar (argocd-cmp-server
in Argo CD's image, sops copied from sops's image, both built by the kind bed under their upstream names) starts
in argocd-repo-server's pod; after `secrets init` the kubelet fills the sidecar's key folder from the Secret, and
the Secret committed only as ciphertext is applied decrypted."""

from __future__ import annotations

import base64
import json

import pytest

from helpers.sops_secrets import API_KEY, KEYGEN, SOPS, commit_encrypted_secret

from kindbed.fixtures import wait_for_free_lab_ports

NAME = "e2e-argocd-sops"


@pytest.mark.skipif(not SOPS or not KEYGEN, reason="sops and age-keygen: run scripts/install-ci-tools")
def test_argocd_on_kind_decrypts_a_secret_committed_only_encrypted(kind_bed, tmp_path):
    from kubernetes import client

    wait_for_free_lab_ports()
    try:
        kind_bed.gitops_lab(
            "up",
            "--engine",
            "argocd",
            "--preload",
            "--engine-manifests",
            str(kind_bed.manifests),
            "--timeout",
            "900",
            name=NAME,
        )
        apps = client.AppsV1Api(kind_bed.api(NAME))
        pod = apps.read_namespaced_deployment("argocd-repo-server", "argocd").spec.template.spec
        assert "gitops-lab-sops" in [c.name for c in pod.containers]
        made = kind_bed.gitops_lab("secrets", "init", "--output", "json", name=NAME, GITOPS_LAB_AGE_KEYGEN=KEYGEN)
        assert "Secret/sops-age" in json.loads(made.stdout)["changed"]
        repo, _env, _url = kind_bed.learner_clone(NAME, tmp_path / "lab")
        commit_encrypted_secret(repo, API_KEY, "Give the dev model server its API key (encrypted)")
        kind_bed.gitops_lab("sync", "--env", "dev", "--timeout", "600", name=NAME)
        served = client.CoreV1Api(kind_bed.api(NAME)).read_namespaced_secret("model-api-key", "ml-dev")
        assert base64.b64decode(served.data["API_KEY"]).decode() == API_KEY
    finally:
        kind_bed.gitops_lab("down", name=NAME, check=False)

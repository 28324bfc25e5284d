"""`gitops-lab credentials` with Argo CD on the testbed: the UI's login (admin, and the password
argocd-server generated), read from the real argocd-server's Secret."""

from __future__ import annotations

import base64
import json

from gitops_lab.state import EnvironmentState


def _state(kubeconfig: str) -> None:
    EnvironmentState(engine="argocd", provider="existing", kubeconfig=kubeconfig).save()


def test_the_ui_login_is_the_password_argocd_server_generated(cli, testbed_cluster, testbed_argocd_server):
    _state(testbed_cluster.kubeconfig)
    data = json.loads(cli("credentials", "--output", "json").output)
    secret = testbed_cluster.api_client()
    from kubernetes import client

    stored = client.CoreV1Api(secret).read_namespaced_secret("argocd-initial-admin-secret", "argocd")
    assert data["argocd"] == {"username": "admin", "password": base64.b64decode(stored.data["password"]).decode()}
    text = cli("credentials").output
    assert f"Argo CD UI: username admin, password {data['argocd']['password']}" in text

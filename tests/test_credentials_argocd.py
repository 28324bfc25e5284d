"""`gitops-lab credentials` with Argo CD: the UI's login (admin, and the password argocd-server
generated), read from the real argocd-server's Secret on the testbed; and the other logins still
printed, with the reason, when the cluster cannot be reached."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest

from gitops_lab.state import EnvironmentState


def _state(kubeconfig: str, tenant: str | None = None) -> None:
    EnvironmentState(engine="argocd", provider="existing", kubeconfig=kubeconfig, tenant=tenant).save()


def _closed_cluster(tmp_path: Path) -> str:
    """A kubeconfig naming a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


def test_an_unreachable_cluster_is_said_and_the_command_still_succeeds(cli, tmp_path):
    _state(_closed_cluster(tmp_path))
    result = cli("credentials", "--timeout", "5")
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Argo CD UI")]
    assert line.startswith("Argo CD UI: username admin; the password could not be read: cannot reach the cluster at")
    data = json.loads(cli("credentials", "--timeout", "5", "--output", "json").output)
    assert data["argocd"]["username"] == "admin" and data["argocd"]["password"] is None
    assert "cannot reach the cluster" in data["argocd"]["problem"]


def test_a_class_learner_gets_no_admin_login(cli, tmp_path):
    _state(_closed_cluster(tmp_path), tenant="learner-01")
    result = cli("credentials")
    assert result.exit_code == 2 and "Argo CD" not in result.output


@pytest.mark.testbed
def test_the_ui_login_is_the_password_argocd_server_generated(cli, testbed_cluster, testbed_argocd_server):
    _state(testbed_cluster.kubeconfig)
    data = json.loads(cli("credentials", "--output", "json").output)
    secret = testbed_cluster.api_client()
    from kubernetes import client

    stored = client.CoreV1Api(secret).read_namespaced_secret("argocd-initial-admin-secret", "argocd")
    assert data["argocd"] == {"username": "admin", "password": base64.b64decode(stored.data["password"]).decode()}
    text = cli("credentials").output
    assert f"Argo CD UI: username admin, password {data['argocd']['password']}" in text

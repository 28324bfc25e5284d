"""`gitops-lab credentials` with Argo CD: the other logins still printed, with the reason, when the
cluster cannot be reached (the UI's login read from the real argocd-server's Secret on the testbed:
tests/e2e/testbed/test_credentials_argocd_testbed.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path


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

"""Running a command in a pod (kube/exec.py): the exit code read from the API server's status channel, and a
pod that cannot be reached said in one line naming its namespace. The real exec runs on kind (Gitea's admin,
tests/e2e/kind/test_kind_gitea_e2e.py)."""

from __future__ import annotations

import json

import pytest

from gitops_lab.errors import ClusterError
from gitops_lab.kube.exec import _exit_code, exec_in_pod


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("", 0),
        (json.dumps({"metadata": {}, "status": "Success"}), 0),
        (
            json.dumps(
                {
                    "status": "Failure",
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
                }
            ),
            3,
        ),
        (json.dumps({"status": "Failure", "message": "container not found"}), 1),
        ("not json", 1),
    ],
)
def test_the_exit_code_is_read_from_the_status_channel(status, code):
    assert _exit_code(status) == code


class _Unreachable:
    def core(self):
        raise RuntimeError("connection refused")


def test_a_pod_that_cannot_be_reached_is_one_line_naming_its_namespace():
    with pytest.raises(ClusterError) as raised:
        exec_in_pod(_Unreachable(), "gitops-lab-git", "gitea-0", ["gitea", "--version"])
    assert raised.value.message == "cannot run `gitea` in pod gitops-lab-git/gitea-0: connection refused"
    assert raised.value.fix is not None and "kubectl -n gitops-lab-git get pods" in raised.value.fix

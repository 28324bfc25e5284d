"""Run a command in a running pod (what `kubectl exec` does), bounded by the command's deadline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitops_lab.errors import ClusterError, WaitTimeout
from gitops_lab.kube.client import call_timeout

if TYPE_CHECKING:
    from gitops_lab.kube.client import Kube


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str


def ready_pod(kube: Kube, namespace: str, selector: str) -> str:
    """The name of a Ready pod matching ``selector``; a ClusterError naming them when there is none."""
    pods = kube.core().list_namespaced_pod(namespace, label_selector=selector, _request_timeout=call_timeout(10)).items
    for pod in pods:
        conditions = (pod.status.conditions if pod.status else None) or []
        if pod.metadata.deletion_timestamp is None and any(
            c.type == "Ready" and c.status == "True" for c in conditions
        ):
            return pod.metadata.name
    raise ClusterError(
        f"no Ready pod matches {selector} in namespace {namespace}",
        fix=f"check `kubectl -n {namespace} get pods -l {selector}`, then run the command again",
    )


def exec_in_pod(kube: Kube, namespace: str, pod: str, command: list[str], seconds: float = 60.0) -> ExecResult:
    """Run ``command`` in ``pod``'s first container and wait for it: at most ``seconds`` and the deadline."""
    from kubernetes.stream import stream
    from kubernetes.stream.ws_client import ERROR_CHANNEL

    timeout = call_timeout(seconds)
    if timeout is None:
        raise WaitTimeout(f"the command's deadline passed before `{command[0]}` could run in pod {namespace}/{pod}")
    try:
        client = stream(
            kube.core().connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=command,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
            _request_timeout=timeout,
        )
    except Exception as exc:  # the websocket library's errors have no common base
        raise ClusterError(
            f"cannot run `{command[0]}` in pod {namespace}/{pod}: {exc}",
            fix=f"check that the pod is running (`kubectl -n {namespace} get pods`), then run the command again",
        ) from exc
    try:
        client.run_forever(timeout=timeout)
        if client.is_open():
            raise WaitTimeout(f"`{' '.join(command[:3])}` in pod {namespace}/{pod} did not finish in {timeout:.0f}s")
        stdout, stderr = client.read_stdout() or "", client.read_stderr() or ""
        status = client.read_channel(ERROR_CHANNEL) or ""
    finally:
        client.close()
    return ExecResult(_exit_code(status), stdout, stderr)


def _exit_code(status: str) -> int:
    """The exit code in the API server's status message on the error channel (empty or Success: 0)."""
    import json

    if not status.strip():
        return 0
    try:
        data = json.loads(status)
    except ValueError:
        return 1
    if data.get("status") == "Success":
        return 0
    for cause in (data.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", "1"))
            except ValueError:
                return 1
    return 1

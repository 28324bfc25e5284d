"""Build a Kubernetes API client from a kubeconfig and context."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from gitops_lab.errors import ClusterError, GitOpsLabError, WaitTimeout
from gitops_lab.deadline import current_deadline


@dataclass
class Kube:
    """The API client plus where it points, for messages."""

    api: Any  # kubernetes.client.ApiClient
    host: str
    context: str | None
    kubeconfig: str | None

    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api)

    def apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.api)


def connect(kubeconfig: str | None = None, context: str | None = None) -> Kube:
    """A client for ``context`` of ``kubeconfig`` (default: $KUBECONFIG, ~/.kube/config)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException
    from urllib3.util.retry import Retry

    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    except (ConfigException, FileNotFoundError, OSError) as exc:
        where = f"context {context!r} of {path}" if context else path
        raise ClusterError(
            f"cannot load the Kubernetes configuration from {where}: {exc}",
            fix="pass --kubeconfig and --context, or check `kubectl config get-contexts`",
        ) from exc
    # Calls fail rather than hang when the API server does not answer.
    # A refused connection (an API server starting) is tried twice more at once; a read that timed out is
    # not: its time came out of the command's deadline, and the caller's own retries decide what comes next.
    configuration.retries = Retry(total=2, connect=2, read=0, status=0, other=0, backoff_factor=0.1)
    api = _api_client_class()(configuration)
    return Kube(api=api, host=configuration.host, context=context, kubeconfig=path)


#: The bound of one API call when the command set no deadline (and the call named none).
DEFAULT_CALL_SECONDS = 60.0


def call_timeout(asked: Any) -> Any:
    """``asked`` (a number, a (connect, read) pair or None) cut to what is left of the command's deadline.

    None when the deadline has passed: the caller raises.
    """
    deadline = current_deadline()
    left = deadline.remaining() if deadline else DEFAULT_CALL_SECONDS
    if left <= 0:
        return None
    if isinstance(asked, tuple):
        return tuple(min(part, left) if part else left for part in asked)
    return min(asked, left) if asked else left


def _api_client_class() -> type:
    """The official ApiClient, with every call bounded by the command's deadline.

    Typed calls (``list_namespaced_pod``) and raw ones (rest.py) alike: an API
    server that accepts and never answers costs at most what is left of --timeout,
    and one that cannot be reached is a ClusterError saying so, whatever call met it.
    """
    from kubernetes import client
    from urllib3.exceptions import HTTPError

    class BoundedApiClient(client.ApiClient):
        #: The last call's failure to reach the API server (None after a success), for the deadline's message.
        unreachable: BaseException | None = None

        def call_api(
            self,
            method: Any,
            url: Any,
            header_params: Any = None,
            body: Any = None,
            post_params: Any = None,
            _request_timeout: Any = None,
        ) -> Any:
            timeout = call_timeout(_request_timeout)
            if timeout is None:
                raise _deadline_passed(self.configuration.host, self.unreachable)
            try:
                answer = super().call_api(method, url, header_params, body, post_params, _request_timeout=timeout)
            except (HTTPError, OSError) as exc:
                self.unreachable = exc
                deadline = current_deadline()
                # a call that waited out what was left of --timeout says so: the user's number ended it
                within = (
                    f" within the command's {deadline.describe()} deadline" if deadline and deadline.expired else ""
                )
                raise unreachable(self.configuration.host, exc, within) from exc
            self.unreachable = None
            return answer

    return BoundedApiClient


def unreachable(host: str, exc: BaseException, within: str = "") -> ClusterError:
    """The one line for an API server that refuses, never answers or cannot be resolved."""
    return ClusterError(
        f"cannot reach the cluster at {host} ({_reason(exc)}){within}",
        fix="is it running? `gitops-lab up` starts it; else check --kubeconfig and --context",
    )


def _deadline_passed(host: str, last_failure: BaseException | None) -> GitOpsLabError:
    deadline = current_deadline()
    within = f" within the command's {deadline.describe()} deadline" if deadline else ""
    if last_failure is not None:
        return unreachable(host, last_failure, within)
    return WaitTimeout(
        f"the command's {deadline.describe() if deadline else ''} deadline passed before the next call to the cluster",
        fix="re-run with a larger --timeout",
    )


def check_reachable(kube: Kube) -> str:
    """The API server's version, or a ClusterError saying it cannot be reached."""
    from kubernetes import client

    try:
        info = client.VersionApi(kube.api).get_code(_request_timeout=10)
    except client.ApiException as exc:
        raise unreachable(kube.host, exc) from exc
    return info.git_version


def _reason(exc: BaseException) -> str:
    """The root of a urllib3 error in a few words: "Connection refused", "read timeout"."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text.lower():
        return "no answer in time"
    return " ".join(text.split())[:120]


def connect_in_cluster() -> Kube:
    """A client for the cluster this process runs in, as its pod's ServiceAccount (the release automation)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException as exc:
        raise ClusterError(
            f"not running in a pod with a ServiceAccount token: {exc}",
            fix="run the release automation in the cluster (`gitops-lab up --release-automation`), "
            "or `gitops-lab release --watch` on a machine with a kubeconfig",
        ) from exc
    return Kube(api=_api_client_class()(configuration), host=configuration.host, context=None, kubeconfig=None)

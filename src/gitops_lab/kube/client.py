"""Build a Kubernetes API client from a kubeconfig and context."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from gitops_lab.errors import ClusterError


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
    configuration.retries = 2
    api = client.ApiClient(configuration)
    return Kube(api=api, host=configuration.host, context=context, kubeconfig=path)


def check_reachable(kube: Kube) -> str:
    """The API server's version, or a ClusterError saying it cannot be reached."""
    from kubernetes import client
    from urllib3.exceptions import HTTPError

    try:
        info = client.VersionApi(kube.api).get_code(_request_timeout=10)
    except (HTTPError, OSError, client.ApiException) as exc:
        raise ClusterError(
            f"cannot reach the Kubernetes API at {kube.host}: {_reason(exc)}",
            fix="check that the cluster is running (`kubectl cluster-info`) and the kubeconfig/context are right",
        ) from exc
    return info.git_version


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", "") or exc)
    return " ".join(text.split())[:200]

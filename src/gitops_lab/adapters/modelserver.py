"""Talk to a running model server (environments/base/server.py) over HTTP.

One seam, two transports: through the Kubernetes API server's proxy
subresource with the official client (what `gitops-lab verify` uses: no
kubectl, no port-forward), or a plain URL (a server run as a local process in
the unit tests, or one you reached some other way). The checks above it do not
know which one they use.

An environment whose namespace holds the Secret ``model-api-key`` (the secrets
lab's, decrypted by Flux) has a model server that requires its ``API_KEY`` on
/predict; ``cluster_api_key`` reads it with the official client, the one place
the tool gets it, and ``ModelServer`` sends it as ``X-API-Key``: the API
server's proxy consumes an ``Authorization`` header itself.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from gitops_lab.errors import ClusterError
from gitops_lab.kube import rest

MODEL_SERVER_SERVICE = "model-server"
SERVICE_PORT = "http"
#: The Secret the Deployment mounts (optional) and the entry in it that holds /predict's key.
API_KEY_SECRET = "model-api-key"
API_KEY_ENTRY = "API_KEY"
API_KEY_HEADER = "X-API-Key"


class Transport(Protocol):
    where: str  # for messages: "service ml-dev/model-server through the API server"

    def send(
        self, method: str, path: str, body: dict | None, timeout: float, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One request; (status, body). Raises ClusterError when the server cannot be reached."""


class UrlTransport:
    """A model server at ``base_url`` (``http://127.0.0.1:8080``)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.where = self.base_url

    def send(
        self, method: str, path: str, body: dict | None, timeout: float, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/{path.lstrip('/')}", data=data, method=method, headers=headers or {}
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (OSError, urllib.error.URLError) as exc:
            raise ClusterError(
                f"cannot reach the model server at {self.where}: {exc}",
                fix="check that it is running and the URL is right",
            ) from exc


class ApiProxyTransport:
    """A Service or a Pod reached through the API server's proxy subresource.

    ``target`` is ``services/model-server:http`` or ``pods/<name>:8080``.
    """

    def __init__(self, api: Any, namespace: str, target: str):
        self.api = api
        self.path = f"/api/v1/namespaces/{namespace}/{target}/proxy"
        self.where = f"{target.split(':')[0]} in {namespace}, through the API server's proxy"

    def send(
        self, method: str, path: str, body: dict | None, timeout: float, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        from kubernetes.client import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return rest.raw(self.api, method, f"{self.path}/{path.lstrip('/')}", body, timeout, headers)
        except (HTTPError, OSError, ApiException) as exc:
            raise ClusterError(
                f"cannot reach {self.where}: {exc}", fix="check the cluster with `gitops-lab status`"
            ) from exc


def service_transport(api: Any, namespace: str) -> ApiProxyTransport:
    return ApiProxyTransport(api, namespace, f"services/{MODEL_SERVER_SERVICE}:{SERVICE_PORT}")


def pod_transport(api: Any, namespace: str, pod: str, port: int) -> ApiProxyTransport:
    return ApiProxyTransport(api, namespace, f"pods/{pod}:{port}")


def cluster_api_key(api: Any, namespace: str) -> str | None:
    """The API key the model server in ``namespace`` requires: ``API_KEY`` of its Secret
    ``model-api-key``, as the cluster holds it (decrypted); None without that Secret or entry."""
    import base64
    import binascii

    from kubernetes import client
    from kubernetes.client import ApiException
    from urllib3.exceptions import HTTPError

    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(API_KEY_SECRET, namespace, _request_timeout=15)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise ClusterError(
            f"cannot read Secret {namespace}/{API_KEY_SECRET} (the model server's API key): {exc.status} {exc.reason}",
            fix="use a kubeconfig that may read Secrets in the lab's namespaces",
        ) from exc
    except (HTTPError, OSError) as exc:
        raise ClusterError(
            f"cannot read Secret {namespace}/{API_KEY_SECRET}: {exc}", fix="check the cluster with `gitops-lab status`"
        ) from exc
    encoded = (secret.data or {}).get(API_KEY_ENTRY)
    if not encoded:
        return None
    try:
        key = base64.b64decode(encoded, validate=True).decode("utf-8").strip()
    except (binascii.Error, UnicodeDecodeError):
        raise ClusterError(
            f"Secret {namespace}/{API_KEY_SECRET} holds an {API_KEY_ENTRY} that is not UTF-8 text",
            fix=f"put the key in {API_KEY_ENTRY} as text (stringData) and encrypt the Secret again",
        ) from None
    return key or None


class ModelServer:
    """The model server's endpoints, over any transport."""

    def __init__(self, transport: Transport, timeout: float = 10, api_key: str | None = None):
        self.transport = transport
        self.timeout = timeout
        self.api_key = api_key

    @property
    def where(self) -> str:
        return self.transport.where

    def get_json(self, path: str) -> tuple[int, dict]:
        status, data = self.transport.send("GET", path, None, self.timeout)
        return status, _json(data)

    def predict(self, instances: list[dict[str, float]]) -> tuple[int, dict]:
        headers = {API_KEY_HEADER: self.api_key} if self.api_key else None
        status, data = self.transport.send("POST", "predict", {"instances": instances}, self.timeout, headers)
        return status, _json(data)

    def metrics_text(self) -> str:
        status, data = self.transport.send("GET", "metrics", None, self.timeout)
        if status != 200:
            raise ClusterError(
                f"{self.where} answered /metrics with HTTP {status}: {_excerpt(data)}",
                fix="see the pod's logs (`gitops-lab status` names it)",
            )
        return data.decode("utf-8", "replace")


def _json(data: bytes) -> dict:
    try:
        value = json.loads(data)
    except ValueError:
        return {"error": _excerpt(data)}
    return value if isinstance(value, dict) else {"error": _excerpt(data)}


def _excerpt(data: bytes) -> str:
    return " ".join(data.decode("utf-8", "replace").split())[:200]

"""Raw REST calls through the official client's ApiClient (kubernetes >= 37).

The typed API classes cover built-in kinds; engines' custom resources and
server-side apply need plain requests on a path, which this module makes with
the client's own configuration, authentication and TLS settings.
"""

from __future__ import annotations

import json
from typing import Any

QueryParams = list[tuple[str, str]]


def request(
    api: Any,
    method: str,
    path: str,
    body: Any = None,
    query: QueryParams | None = None,
    content_type: str = "application/json",
    timeout: Any = 30,
) -> Any:
    """Send one request and return the decoded JSON body; raise ApiException on non-2xx."""
    from kubernetes.client import ApiException

    response = _send(api, method, path, body, query, content_type, timeout)
    response.read()
    text = response.data.decode("utf-8") if response.data else ""
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=text, data=None)
    return json.loads(text) if text else None


def raw(
    api: Any, method: str, path: str, body: Any = None, timeout: Any = 30, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Send one request and return (status, body bytes), whatever the status.

    For the API server's proxy subresource, where the answer is the proxied
    server's own (JSON, Prometheus text, or an error page). ``headers`` go to
    the proxied server (the API server forwards them; not Authorization, which
    it consumes to authenticate the request itself).
    """
    response = _send(api, method, path, body, None, "application/json", timeout, headers)
    response.read()
    return response.status, response.data or b""


def stream(api: Any, path: str, query: QueryParams, timeout: Any) -> Any:
    """Open a streaming GET (a watch) and return the raw urllib3 response."""
    from kubernetes.client import ApiException

    response = _send(api, "GET", path, None, query, "application/json", timeout)
    if not 200 <= response.status <= 299:
        response.read()
        raise ApiException.from_response(http_resp=response, body=response.data.decode("utf-8", "replace"), data=None)
    return response.response


def _send(
    api: Any,
    method: str,
    path: str,
    body: Any,
    query: QueryParams | None,
    content_type: str,
    timeout: Any,
    extra_headers: dict[str, str] | None = None,
):
    headers = {"Accept": "application/json", **(extra_headers or {})}
    if body is not None:
        headers["Content-Type"] = content_type
    method, url, headers, body, post = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    return api.call_api(method, url, header_params=headers, body=body, post_params=post, _request_timeout=timeout)

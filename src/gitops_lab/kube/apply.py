"""Server-side apply of any manifest through the Python client (no kubectl).

The REST path of each kind is found by discovery of its group/version, cached,
and refreshed when a kind is not found (a CRD applied a moment ago).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gitops_lab.errors import ClusterError, GitOpsLabError
from gitops_lab.kube import rest, retry
from gitops_lab.kube.client import Kube

FIELD_MANAGER = "gitops-lab"


@dataclass(frozen=True)
class ResourceInfo:
    plural: str
    namespaced: bool


class Applier:
    def __init__(self, kube: Kube, field_manager: str = FIELD_MANAGER):
        self.kube = kube
        self.field_manager = field_manager
        self._discovery: dict[str, dict[str, ResourceInfo]] = {}

    # -- discovery ----------------------------------------------------------
    def resource(self, api_version: str, kind: str) -> ResourceInfo:
        found = self._discover(api_version).get(kind)
        if found is None:
            self._discovery.pop(api_version, None)
            found = self._discover(api_version).get(kind)
        if found is None:
            raise ClusterError(
                f"the cluster does not serve {kind} in {api_version}",
                fix="install the CRD that defines it first (for the engines: `gitops-lab up`)",
            )
        return found

    def _discover(self, api_version: str) -> dict[str, ResourceInfo]:
        if api_version not in self._discovery:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                body = retry.call(lambda: self._request("GET", path))
            except Exception as exc:  # 404 means the group is not served yet
                if getattr(exc, "status", None) == 404:
                    return {}
                raise
            self._discovery[api_version] = {
                r["kind"]: ResourceInfo(r["name"], r["namespaced"])
                for r in body.get("resources", [])
                if "/" not in r["name"]
            }
        return self._discovery[api_version]

    def collection_path(self, api_version: str, kind: str, namespace: str | None = None) -> str:
        """The REST path of ``kind``'s collection (in ``namespace`` when the kind is namespaced)."""
        info = self.resource(api_version, kind)
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if info.namespaced:
            if not namespace:
                raise ClusterError(f"{kind} needs a namespace")
            return f"{prefix}/namespaces/{namespace}/{info.plural}"
        return f"{prefix}/{info.plural}"

    def path(self, obj: dict[str, Any], namespace: str | None = None) -> str:
        meta = obj["metadata"]
        collection = self.collection_path(obj["apiVersion"], obj["kind"], meta.get("namespace") or namespace)
        return f"{collection}/{meta['name']}"

    # -- requests -----------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list | None = None,
        content_type: str = "application/json",
    ) -> Any:
        return rest.request(self.kube.api, method, path, body, query, content_type)

    def apply(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Server-side apply one object; conflicts with other managers are forced."""
        path = self.path(obj, namespace)
        body = dict(obj)
        if namespace and self.resource(obj["apiVersion"], obj["kind"]).namespaced:
            body["metadata"] = {**obj["metadata"], "namespace": obj["metadata"].get("namespace") or namespace}
        query = [("fieldManager", self.field_manager), ("force", "true")]
        try:
            return retry.call(lambda: self._request("PATCH", path, body, query, "application/apply-patch+yaml"))
        except Exception as exc:
            raise ClusterError(f"failed to apply {obj['kind']}/{obj['metadata']['name']}: {_api_message(exc)}") from exc

    def apply_all(self, objects: Iterable[dict[str, Any]], namespace: str | None = None) -> list[dict[str, Any]]:
        return [self.apply(obj, namespace) for obj in objects]

    def apply_changed(self, objects: Iterable[dict[str, Any]]) -> list[str]:
        """Apply objects; return "Kind/name" of those whose stored content changed.

        Compared on what gitops-lab sets (labels, annotations, spec, data), not on
        resourceVersion, which controllers move with every status update.
        """
        changed = []
        for obj in objects:
            meta = obj["metadata"]
            before = self.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
            after = self.apply(obj)
            if before is None or _managed_view(before) != _managed_view(after):
                changed.append(f"{obj['kind']}/{meta['name']}")
        return changed

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        path = self.path({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}, namespace)
        try:
            return retry.call(lambda: self._request("GET", path))
        except GitOpsLabError:
            raise  # already one line that says what happened (the cluster unreachable, the deadline passed)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise ClusterError(f"failed to read {kind}/{name}: {_api_message(exc)}") from exc

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects of ``kind`` (in ``namespace``), optionally those matching ``label_selector``."""
        path = self.collection_path(api_version, kind, namespace)
        query = [("labelSelector", label_selector)] if label_selector else None
        try:
            return retry.call(lambda: self._request("GET", path, None, query)).get("items") or []
        except Exception as exc:
            raise ClusterError(f"failed to list {kind}: {_api_message(exc)}") from exc

    def merge_patch(
        self, api_version: str, kind: str, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        path = self.path({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}, namespace)
        try:
            return retry.call(lambda: self._request("PATCH", path, patch, None, "application/merge-patch+json"))
        except Exception as exc:
            raise ClusterError(f"failed to patch {kind}/{name}: {_api_message(exc)}") from exc

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete one object (its dependents in the background); False when it was not there."""
        path = self.path({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}, namespace)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            retry.call(lambda: self._request("DELETE", path, body))
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise ClusterError(f"failed to delete {kind}/{name}: {_api_message(exc)}") from exc
        return True


def _managed_view(obj: dict[str, Any]) -> Any:
    """The parts of an object gitops-lab sets, to tell whether an apply changed it."""
    meta = obj.get("metadata", {})
    return (
        meta.get("labels"),
        {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("kubectl.")},
        obj.get("spec"),
        obj.get("data"),
        obj.get("stringData"),
    )


def _api_message(exc: BaseException) -> str:
    import json

    body = getattr(exc, "body", None)
    if body:
        try:
            return json.loads(body).get("message", str(body))[:300]
        except (ValueError, AttributeError):
            return str(body)[:300]
    return " ".join(str(exc).split())[:300]

"""Argo CD's SOPS plugin sidecar on the testbed: what the managed install runs in argocd-repo-server's pod
(gitops_lab.adapters.engines.argocd_sops), as host processes.

- ``argocd-cmp-server`` (the testbed's argocd binary in that role) reads the product's plugin.yaml and
  listens on a socket in the plugins folder the repo-server also lists (ARGOCD_PLUGINSOCKFILEPATH),
  as the sidecar shares the ``plugins`` volume with it; its work folder and TMPDIR are its own, as its
  ``/tmp`` is. Its PATH has the testbed's sops and kustomize first.
- ``SecretVolume`` does the kubelet's part for the Secret volume the sidecar mounts optionally: it
  keeps a folder holding the Secret's entries as files (absent while the Secret is), polling the API.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import Any

from .cluster import Cluster


class SecretVolume:
    """A folder holding Secret ``name``'s entries in ``namespace`` as files, kept up to date every ``period`` s."""

    def __init__(self, cluster: Cluster, namespace: str, name: str, folder: Path, period: float = 1.0):
        self.cluster, self.namespace, self.name, self.folder, self.period = cluster, namespace, name, folder, period
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"secret-volume-{name}", daemon=True)

    def start(self) -> "SecretVolume":
        self.sync()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.sync()
            except Exception:  # the API server restarting: the kubelet, too, tries again later
                continue

    def sync(self) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        with self.cluster.api_client() as api:
            try:
                secret: Any = client.CoreV1Api(api).read_namespaced_secret(self.name, self.namespace)
                data = secret.data or {}
            except ApiException as exc:
                if exc.status != 404:
                    raise
                data = {}
        for path in self.folder.iterdir():
            if path.name not in data:
                path.unlink()
        for key, value in data.items():
            content = base64.b64decode(value)
            target = self.folder / key
            if target.is_file() and target.read_bytes() == content:
                continue
            tmp = self.folder / f".{key}.tmp"
            tmp.write_bytes(content)
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)

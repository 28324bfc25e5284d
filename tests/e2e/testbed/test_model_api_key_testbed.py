"""The model server's API key as the tool reads it from the cluster: the namespace's Secret model-api-key
(a real API server, the testbed).

The server's side of the key (a real process): tests/unit/model/test_model_server_api_key.py."""

from __future__ import annotations

import base64

import pytest

KEY = "sk-model-0123456789abcdef"


def test_the_cluster_key_is_read_from_the_namespaces_secret(testbed_cluster):
    from kubernetes import client

    from gitops_lab.adapters.modelserver import cluster_api_key
    from gitops_lab.errors import ClusterError
    from gitops_lab.kube.client import connect

    kube = connect(testbed_cluster.kubeconfig)
    core = client.CoreV1Api(kube.api)
    namespace = "ml-apikey"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        assert cluster_api_key(kube.api, namespace) is None  # no Secret: the server is open
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name="model-api-key"), string_data={"OTHER": "x"})
        core.create_namespaced_secret(namespace, secret)
        assert cluster_api_key(kube.api, namespace) is None  # no API_KEY in it
        core.patch_namespaced_secret("model-api-key", namespace, {"stringData": {"API_KEY": KEY + "\n"}})
        assert cluster_api_key(kube.api, namespace) == KEY
        binary = base64.b64encode(b"\xff\xfe").decode()
        core.patch_namespaced_secret("model-api-key", namespace, {"data": {"API_KEY": binary}})
        with pytest.raises(ClusterError, match="not UTF-8 text"):
            cluster_api_key(kube.api, namespace)
    finally:
        core.delete_namespace(namespace)

"""Argo CD decrypts the lab's SOPS files with a config-management plugin (CMP) beside its repo-server.

Argo CD's documented sidecar mechanism (its v3.2 docs, operator-manual/config-management-plugins.md):
- a container in argocd-repo-server runs ``/var/run/argocd/argocd-cmp-server``, the argocd binary
  the repo-server's init container ``copyutil`` copies into the shared ``var-files`` volume; it reads
  ``/home/argocd/cmp-server/config/plugin.yaml`` (a ConfigManagementPlugin, here from the ConfigMap
  ``manifests/argocd/sops-plugin.yaml``) and serves it on a socket in the ``plugins`` volume
  (``/home/argocd/cmp-server/plugins``), which the repo-server lists;
- it runs as user 999 with a ``/tmp`` of its own, not the repo-server's;
- an Application uses it when ``spec.source.plugin.name`` names it. The plugin has no discovery, so
  no Application uses it unless it names it: only the lab's, once `secrets init` made the key.

The sidecar runs Argo CD's own image (sh, grep and kustomize are in it), with ``sops`` copied by an
init container from sops's image (manifests/argocd/images.yaml) into a folder first on its PATH. The
age key is the Secret ``sops-age`` of the Argo CD namespace, mounted optionally: the sidecar starts
before `secrets init` made it, and the kubelet fills the folder once it exists.
"""

from __future__ import annotations

import copy
import string
from typing import Any

import yaml

from gitops_lab.adapters.engines.base import SOPS_KEY_DATA, SOPS_KEY_SECRET
from gitops_lab.resources import manifests_dir

#: The plugin's name (ConfigManagementPlugin metadata.name, no version): what an Application names.
PLUGIN = "gitops-lab-sops"
CONFIG_MAP = "gitops-lab-sops-plugin"
SIDECAR = "gitops-lab-sops"
REPO_SERVER = "argocd-repo-server"
KEY_SECRET, KEY_DATA = SOPS_KEY_SECRET, SOPS_KEY_DATA
KEY_DIR = "/home/argocd/sops-age"
TOOLS_DIR = "/custom-tools"
CONFIG_DIR = "/home/argocd/cmp-server/config"
#: The sidecar's variable naming the plugin's script (plugin.yaml's generate runs it).
GENERATE_VAR = "GITOPS_LAB_SOPS_GENERATE"
GENERATE_FILE = "generate.sh"
_PATH = f"{TOOLS_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VOLUMES = {
    "config": f"{PLUGIN}-config",
    "tmp": f"{PLUGIN}-tmp",
    "tools": f"{PLUGIN}-tools",
    "key": f"{PLUGIN}-key",
}
_RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 999,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def sops_image() -> str:
    """sops's image, pinned by digest (manifests/argocd/images.yaml)."""
    return str(yaml.safe_load((manifests_dir("argocd") / "images.yaml").read_text(encoding="utf-8"))["sops"])


def plugin_config_map(namespace: str) -> dict[str, Any]:
    """The ConfigMap holding plugin.yaml, for the sidecar to mount."""
    text = (manifests_dir("argocd") / "sops-plugin.yaml").read_text(encoding="utf-8")
    rendered = string.Template(text).substitute(
        config_map=CONFIG_MAP, namespace=namespace, plugin=PLUGIN, key_secret=KEY_SECRET
    )
    return yaml.safe_load(rendered)


def plugin_files(namespace: str) -> dict[str, str]:
    """plugin.yaml and generate.sh, as the sidecar finds them in its config folder (the testbed's too)."""
    return {name: str(text) for name, text in plugin_config_map(namespace)["data"].items()}


def add_sops_plugin(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The install's objects with the plugin's ConfigMap, and its sidecar in argocd-repo-server.

    Unchanged when the install has no argocd-repo-server container (nothing to put a sidecar beside).
    """
    repo_server = next(
        (o for o in objects if o.get("kind") == "Deployment" and o["metadata"]["name"] == REPO_SERVER), None
    )
    pod = ((repo_server or {}).get("spec") or {}).get("template", {}).get("spec") or {}
    argocd_image = next((c.get("image") for c in pod.get("containers") or [] if c.get("name") == REPO_SERVER), None)
    if not argocd_image:
        return objects
    pod["initContainers"] = [c for c in pod.get("initContainers") or [] if c["name"] != f"{PLUGIN}-install"]
    pod["initContainers"].append(
        {
            "name": f"{PLUGIN}-install",
            "image": sops_image(),
            "command": ["cp", "/usr/local/bin/sops", f"{TOOLS_DIR}/sops"],
            "securityContext": copy.deepcopy(_RESTRICTED),
            "volumeMounts": [{"name": _VOLUMES["tools"], "mountPath": TOOLS_DIR}],
        }
    )
    pod["containers"] = [c for c in pod["containers"] if c["name"] != SIDECAR]
    pod["containers"].append(
        {
            "name": SIDECAR,
            "image": argocd_image,
            "command": ["/var/run/argocd/argocd-cmp-server"],
            "env": [
                {"name": "SOPS_AGE_KEY_FILE", "value": f"{KEY_DIR}/{KEY_DATA}"},
                {"name": "PATH", "value": _PATH},
                {"name": GENERATE_VAR, "value": f"{CONFIG_DIR}/{GENERATE_FILE}"},
            ],
            "securityContext": copy.deepcopy(_RESTRICTED),
            "volumeMounts": [
                {"name": "var-files", "mountPath": "/var/run/argocd"},
                {"name": "plugins", "mountPath": "/home/argocd/cmp-server/plugins"},
                *(
                    {"name": _VOLUMES["config"], "mountPath": f"{CONFIG_DIR}/{name}", "subPath": name}
                    for name in ("plugin.yaml", GENERATE_FILE)
                ),
                {"name": _VOLUMES["tmp"], "mountPath": "/tmp"},
                {"name": _VOLUMES["tools"], "mountPath": TOOLS_DIR},
                {"name": _VOLUMES["key"], "mountPath": KEY_DIR, "readOnly": True},
            ],
        }
    )
    ours = set(_VOLUMES.values())
    pod["volumes"] = [v for v in pod.get("volumes") or [] if v["name"] not in ours] + [
        {"name": _VOLUMES["config"], "configMap": {"name": CONFIG_MAP}},
        {"name": _VOLUMES["tmp"], "emptyDir": {}},
        {"name": _VOLUMES["tools"], "emptyDir": {}},
        {"name": _VOLUMES["key"], "secret": {"secretName": KEY_SECRET, "optional": True}},
    ]
    others = [o for o in objects if not (o.get("kind") == "ConfigMap" and o["metadata"]["name"] == CONFIG_MAP)]
    return [*others, plugin_config_map(namespace)]


def plugin_source() -> dict[str, Any]:
    """What an Application's spec.source gets to be rendered by the plugin."""
    return {"plugin": {"name": PLUGIN}}

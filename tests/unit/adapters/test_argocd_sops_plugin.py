"""The manifests that let Argo CD decrypt the lab's SOPS files: the plugin's sidecar in argocd-repo-server
(as Argo CD v3.2's config-management-plugin docs lay it out), its plugin.yaml, the Applications that name it
only once the key exists, and the images `gitops-lab images` knows."""

from __future__ import annotations

from typing import Any

import yaml

from gitops_lab.adapters.engines.argocd import ArgoCD
from gitops_lab.adapters.engines.argocd_sops import CONFIG_MAP, PLUGIN, SIDECAR, plugin_files, sops_image
from gitops_lab.adapters.engines.base import EnvironmentTarget, RepoAccess
from gitops_lab.adapters.images import engine_images

ARGOCD_IMAGE = "quay.io/argoproj/argocd:v3.2.11"


def upstream_repo_server() -> dict[str, Any]:
    """argocd-repo-server as Argo CD v3.2.11's install.yaml has it, less what does not matter here."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "argocd-repo-server"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "argocd-repo-server",
                            "image": ARGOCD_IMAGE,
                            "volumeMounts": [
                                {"mountPath": "/tmp", "name": "tmp"},
                                {"mountPath": "/home/argocd/cmp-server/plugins", "name": "plugins"},
                            ],
                        }
                    ],
                    "initContainers": [
                        {
                            "name": "copyutil",
                            "image": ARGOCD_IMAGE,
                            "command": ["/bin/cp", "-n", "/usr/local/bin/argocd", "/var/run/argocd/argocd-cmp-server"],
                            "volumeMounts": [{"mountPath": "/var/run/argocd", "name": "var-files"}],
                        }
                    ],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "var-files", "emptyDir": {}},
                        {"name": "plugins", "emptyDir": {}},
                    ],
                }
            }
        },
    }


def installed() -> list[dict[str, Any]]:
    return ArgoCD.__new__(ArgoCD).prepare_manifests(yaml.safe_dump_all([upstream_repo_server()]))


def repo_server_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]


def test_the_sidecar_runs_argocd_cmp_server_with_the_shared_plugins_folder_and_a_tmp_of_its_own():
    pod = repo_server_pod(installed())
    [sidecar] = [c for c in pod["containers"] if c["name"] == SIDECAR]
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]  # what copyutil copies into var-files
    assert sidecar["image"] == ARGOCD_IMAGE  # sh, grep and kustomize are in it
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert mounts["/var/run/argocd"]["name"] == "var-files"
    assert mounts["/home/argocd/cmp-server/plugins"]["name"] == "plugins"  # the repo-server lists this folder
    assert mounts["/home/argocd/cmp-server/config/plugin.yaml"]["subPath"] == "plugin.yaml"
    assert mounts["/tmp"]["name"] != "tmp"  # never the repo-server's /tmp (Argo CD's docs)
    assert sidecar["securityContext"]["runAsUser"] == 999 and sidecar["securityContext"]["runAsNonRoot"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(m["name"] in volumes for c in pod["containers"] + pod["initContainers"] for m in c["volumeMounts"])
    assert volumes[mounts["/home/argocd/cmp-server/config/plugin.yaml"]["name"]]["configMap"] == {"name": CONFIG_MAP}


def test_the_key_secret_is_mounted_optionally_where_sops_looks_for_it():
    pod = repo_server_pod(installed())
    [sidecar] = [c for c in pod["containers"] if c["name"] == SIDECAR]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    key_file = env["SOPS_AGE_KEY_FILE"]
    [key_mount] = [m for m in sidecar["volumeMounts"] if key_file.startswith(m["mountPath"] + "/")]
    assert key_mount["readOnly"]
    volume = next(v for v in pod["volumes"] if v["name"] == key_mount["name"])
    # optional: the sidecar starts before `secrets init` made the Secret
    assert volume["secret"] == {"secretName": "sops-age", "optional": True}
    assert key_file.endswith("/age.agekey")
    # sops comes from its own image, copied into a folder first on the sidecar's PATH
    [install] = [c for c in pod["initContainers"] if c["image"] == sops_image()]
    tools = install["command"][-1].rsplit("/", 1)[0]
    assert install["command"] == ["cp", "/usr/local/bin/sops", f"{tools}/sops"]
    assert env["PATH"].split(":")[0] == tools
    assert any(m["mountPath"] == tools for m in sidecar["volumeMounts"])


def test_preparing_twice_adds_the_sidecar_once():
    again = ArgoCD.__new__(ArgoCD).prepare_manifests(yaml.safe_dump_all(installed()))
    pod = repo_server_pod(again)
    assert [c["name"] for c in pod["containers"]].count(SIDECAR) == 1
    assert len({v["name"] for v in pod["volumes"]}) == len(pod["volumes"])
    assert [o["metadata"]["name"] for o in again if o["kind"] == "ConfigMap"].count(CONFIG_MAP) == 1


def test_plugin_yaml_is_a_named_plugin_without_discovery():
    files = plugin_files("argocd")
    config = yaml.safe_load(files["plugin.yaml"])
    assert config["apiVersion"] == "argoproj.io/v1alpha1" and config["kind"] == "ConfigManagementPlugin"
    assert config["metadata"] == {"name": PLUGIN}  # no version: an Application names it as it is
    assert "discover" not in config["spec"]  # so only an Application that names it uses it
    assert "GITOPS_LAB_SOPS_GENERATE" in " ".join(config["spec"]["generate"]["args"])
    script = files["generate.sh"]
    assert "set -eu" in script and "sops decrypt --in-place" in script and script.rstrip().endswith("kustomize build .")
    assert "fix: run `gitops-lab secrets init`" in script.replace("\\`", "`")


def test_images_list_knows_the_sops_image_pinned_by_digest():
    refs = engine_images("argocd", yaml.safe_dump_all([upstream_repo_server()]))
    assert sops_image() in refs and "@sha256:" in sops_image()
    assert sops_image().startswith("ghcr.io/getsops/sops:v3.13.2@")


class FakeApplier:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]):
        self.objects = objects
        self.applied: list[dict[str, Any]] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        return self.objects.get((kind, name))

    def apply_changed(self, objects):
        self.applied += objects
        return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]

    def merge_patch(self, api_version, kind, name, patch, namespace=None):
        self.patches.append((name, patch))


def engine_with(objects: dict[tuple[str, str], dict[str, Any]]) -> tuple[ArgoCD, FakeApplier]:
    engine, fake = ArgoCD(), FakeApplier(objects)
    engine._applier = fake  # type: ignore[assignment]
    return engine, fake


def register(engine: ArgoCD, fake: FakeApplier) -> dict[str, dict[str, Any]]:
    engine.register([EnvironmentTarget("staging", "ml-staging", "overlays/staging")], RepoAccess("http://git/lab.git"))
    return {o["metadata"]["name"]: o for o in fake.applied if o["kind"] == "Application"}


def test_applications_use_the_plugin_only_once_the_key_exists():
    engine, fake = engine_with({})
    assert "plugin" not in register(engine, fake)["gitops-lab-staging"]["spec"]["source"]
    engine, fake = engine_with({("Secret", "sops-age"): {"metadata": {"name": "sops-age"}}})
    source = register(engine, fake)["gitops-lab-staging"]["spec"]["source"]
    assert source["plugin"] == {"name": PLUGIN} and source["path"] == "overlays/staging"


def test_a_class_learner_never_gets_the_plugin():
    engine, fake = engine_with({("Secret", "sops-age"): {"metadata": {"name": "sops-age"}}})
    engine.tenant = "ada"
    assert all("plugin" not in app["spec"]["source"] for app in register(engine, fake).values())


def app(plugin: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"spec": {"source": {"path": "overlays/dev", **({"plugin": plugin} if plugin else {})}}}


def test_enable_decryption_switches_the_applications_and_then_changes_nothing():
    with_sidecar = {"spec": {"template": {"spec": {"containers": [{"name": "argocd-repo-server"}, {"name": SIDECAR}]}}}}
    engine, fake = engine_with(
        {("Deployment", "argocd-repo-server"): with_sidecar, ("Application", "gitops-lab-dev"): app()}
    )
    assert engine.enable_decryption(["dev"], "sops-age") == ["Application/gitops-lab-dev"]
    assert fake.patches == [("gitops-lab-dev", {"spec": {"source": {"plugin": {"name": PLUGIN}}}})]
    engine, fake = engine_with(
        {("Deployment", "argocd-repo-server"): with_sidecar, ("Application", "gitops-lab-dev"): app({"name": PLUGIN})}
    )
    assert engine.enable_decryption(["dev"], "sops-age") == [] and fake.patches == []


def test_an_argocd_without_the_sidecar_is_refused_with_the_fix():
    import pytest

    from gitops_lab.errors import EngineError

    bare = {"spec": {"template": {"spec": {"containers": [{"name": "argocd-repo-server"}]}}}}
    engine, fake = engine_with({("Deployment", "argocd-repo-server"): bare, ("Application", "gitops-lab-dev"): app()})
    with pytest.raises(EngineError) as refused:
        engine.enable_decryption(["dev"], "sops-age")
    assert SIDECAR in str(refused.value) and "gitops-lab up" in refused.value.fix
    assert fake.patches == []

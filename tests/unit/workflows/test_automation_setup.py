"""What `up --release-automation` applies and pushes (workflows/automation_setup.py), and the
automation's configuration (workflows/release_agent.py), without a cluster."""

from __future__ import annotations

import pytest
import yaml

from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.repo.git import GitAuth
from gitops_lab.errors import UsageError
from gitops_lab.workflows import automation_setup
from gitops_lab.workflows.release_agent import NAMESPACE, AgentConfig, pass_record
from gitops_lab.workflows.up import UpOptions, check_options

WRITER = GitAuth("lab-writer", "s3cret")
NAMESPACES = ["ml-dev", "ml-staging", "ml-prod"]


@pytest.mark.parametrize("engine", ["argocd", "flux"])
def test_the_automation_gets_namespaced_roles_only_and_the_writers_credentials(engine):
    objects = automation_setup.platform_objects(engine_for(engine), WRITER)
    objects += automation_setup.environment_roles(NAMESPACES)
    kinds = {o["kind"] for o in objects}
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    roles = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "Role"}
    assert set(roles) == {NAMESPACE, *NAMESPACES, engine_for(engine).namespace}
    for binding in (o for o in objects if o["kind"] == "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "release-automation", "namespace": NAMESPACE}]
    env_rules = roles["ml-prod"]["rules"]
    assert all(set(r["verbs"]) <= {"get", "list", "watch", "create"} for r in env_rules)
    secret_rule = next(r for r in env_rules if r["resources"] == ["secrets"])
    assert secret_rule["resourceNames"] == ["model-api-key"]  # no other Secret of the environment
    own = roles[NAMESPACE]["rules"]
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]} in own
    [secret] = [o for o in objects if o["kind"] == "Secret"]
    assert secret["stringData"] == {"username": "lab-writer", "password": "s3cret"}


def test_the_workload_in_git_names_the_image_the_repository_and_the_credentials_secret():
    files = automation_setup.workload_files(
        "gitops-lab.local/release-automation:0.1.0-abc", "http://git/lab.git", "flux"
    )
    [deployment] = list(yaml.safe_load_all(files[automation_setup.DEPLOYMENT_FILE]))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "gitops-lab.local/release-automation:0.1.0-abc"
    assert container["imagePullPolicy"] == "Never"  # loaded into kind: no registry has it
    env = {e["name"]: e for e in container["env"]}
    assert env["GITOPS_LAB_REPO_URL"]["value"] == "http://git/lab.git" and env["GITOPS_LAB_ENGINE"]["value"] == "flux"
    assert env["GITOPS_LAB_GIT_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "release-automation-git"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert yaml.safe_load(files[automation_setup.KUSTOMIZATION_FILE])["resources"] == ["release-automation.yaml"]
    assert automation_setup.automation_target().path == "automation"


def test_the_automation_refuses_a_configuration_it_cannot_use_naming_the_variable():
    with pytest.raises(UsageError) as missing:
        AgentConfig.from_environ({"GITOPS_LAB_ENGINE": "flux"})
    assert "$GITOPS_LAB_REPO_URL" in missing.value.message
    with pytest.raises(UsageError) as unknown:
        AgentConfig.from_environ({"GITOPS_LAB_REPO_URL": "http://git/lab.git", "GITOPS_LAB_ENGINE": "jenkins"})
    assert "unknown engine 'jenkins'" in unknown.value.message
    config = AgentConfig.from_environ(
        {
            "GITOPS_LAB_REPO_URL": "http://git/lab.git",
            "GITOPS_LAB_ENGINE": "argocd",
            "GITOPS_LAB_GIT_USERNAME": "w",
            "GITOPS_LAB_GIT_PASSWORD": "p",
        }
    )
    assert config.auth == GitAuth("w", "p") and config.namespace == NAMESPACE


def test_a_pass_that_failed_keeps_its_one_line_error():
    record = pass_record(None, UsageError("the thing", fix="do this"))
    assert record["error"] == "the thing; do this"


@pytest.mark.parametrize(
    "options", [UpOptions(provider="existing", git_url="https://g/x.git"), UpOptions(git_server="gitea")]
)
def test_up_refuses_the_automation_where_it_cannot_run(options):
    options.release_automation = True
    with pytest.raises(UsageError) as refused:
        check_options(options)
    assert "--release-automation runs on kind with the built-in Git server" in refused.value.message

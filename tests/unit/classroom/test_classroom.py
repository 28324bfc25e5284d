"""Classroom tenants without a cluster: names, the tenant's repository template,
its RBAC objects, the engines' per-tenant registration, and the Git server's
per-repository access, with gitops-lab's server.py running for real.

The same, with real RBAC and real controllers, is in tests/e2e/testbed/test_classroom_e2e.py.
"""

from __future__ import annotations

import shutil

import pytest
from helpers.gitservers import RunningServer, free_port
from helpers.gitutil import make_commit, run_git

from gitops_lab.adapters.engines import engine_for
from gitops_lab.adapters.engines.base import EnvironmentTarget, RepoAccess
from gitops_lab.adapters.engines.tenancy import (
    LEARNER_ACCOUNT,
    TENANT_ROLE,
    check_learner_name,
    class_objects,
    tenant_objects,
)
from gitops_lab.adapters.gitserver.base import ClassCredentials, RepoGrant
from gitops_lab.adapters.gitserver.folder import FolderGitServer
from gitops_lab.adapters.gitserver.credentials import Credentials
from gitops_lab.adapters.repo.layout import RepoLayout
from gitops_lab.errors import UsageError
from gitops_lab.classroom.roster import learners_from
from gitops_lab.classroom.tenant import tenant_template


# --------------------------------------------------------------------------- #
# Learner names
# --------------------------------------------------------------------------- #
def test_learners_from_a_count_are_numbered():
    assert learners_from(None, 3) == ["learner-01", "learner-02", "learner-03"]


def test_learners_from_a_file_skip_comments_and_blank_lines(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("# cohort 7\nalice\n\nBob  # lower-cased\n")
    assert learners_from(str(names), None) == ["alice", "bob"]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("alice\nalice\n", "learners named twice: alice"),
        ("al_ice\n", "learner name 'al_ice' is not usable"),
        ("-x\n", "learner name '-x' is not usable"),
        ("# nobody\n", "names nobody"),
        # bob-ml-platform-pipelines.git would be bob's platform repository
        ("bob\nbob-ml-platform-pipelines\n", "learner name 'bob-ml-platform-pipelines' is the name of a platform"),
        ("ml-platform-pipelines\n", "learner name 'ml-platform-pipelines' is the name of a platform repository"),
    ],
)
def test_bad_learner_files_are_refused_with_the_reason(tmp_path, text, problem):
    names = tmp_path / "names.txt"
    names.write_text(text)
    with pytest.raises(UsageError) as err:
        learners_from(str(names), None)
    assert problem in err.value.message


def test_learner_names_must_leave_room_for_the_namespace_suffix():
    check_learner_name("a" * 44)
    with pytest.raises(UsageError):
        check_learner_name("a" * 45)  # gitops-lab-<name> and <name>-staging would pass 63


def test_a_file_or_a_count_not_both():
    with pytest.raises(UsageError):
        learners_from(None, None)


# --------------------------------------------------------------------------- #
# The tenant's repository
# --------------------------------------------------------------------------- #
def test_tenant_template_points_every_overlay_at_the_learners_namespaces(tmp_path):
    template = tenant_template(tmp_path / "t", "alice")
    layout = RepoLayout(template)
    assert {env: layout.namespace(env) for env in ("dev", "staging", "prod")} == {
        "dev": "alice-dev",
        "staging": "alice-staging",
        "prod": "alice-prod",
    }
    for env in ("dev", "staging", "prod"):
        text = (template / "overlays" / env / "kustomization.yaml").read_text()
        assert "namespace.yaml" not in text and "ml-" not in text
        assert not (template / "overlays" / env / "namespace.yaml").exists()
    assert layout.model_version("dev") == "v2"  # the rest of the overlay is the template's


@pytest.mark.skipif(not (shutil.which("kustomize") or shutil.which("kubectl")), reason="needs kustomize or kubectl")
def test_tenant_overlay_renders_only_into_the_learners_namespace(tmp_path):
    from gitops_lab.gates.policy import render

    template = tenant_template(tmp_path / "t", "alice")
    objects = render(template, "prod", "v1")
    assert objects and {o["metadata"].get("namespace") for o in objects} == {"alice-prod"}
    assert "Namespace" not in {o["kind"] for o in objects}


# --------------------------------------------------------------------------- #
# Tenant objects
# --------------------------------------------------------------------------- #
def _by(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def test_flux_tenant_reconciler_and_learner_reach_only_their_namespaces():
    objects = tenant_objects("c1", "alice", engine_for("flux"))
    assert [o["metadata"]["name"] for o in _by(objects, "Namespace")] == ["alice-dev", "alice-staging", "alice-prod"]
    bindings = [b for b in _by(objects, "RoleBinding") if b["roleRef"]["kind"] == "ClusterRole"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["alice-dev", "alice-prod", "alice-staging"]
    for binding in bindings:
        assert binding["roleRef"]["name"] == TENANT_ROLE
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": LEARNER_ACCOUNT, "namespace": "alice-dev"},
            {"kind": "ServiceAccount", "name": "gitops-lab-alice", "namespace": "flux-system"},
        ]
    [role] = _by(objects, "Role")
    assert role["metadata"]["namespace"] == "flux-system"
    names = ["gitops-lab-alice-dev", "gitops-lab-alice-staging", "gitops-lab-alice-prod"]
    assert {(r["apiGroups"][0], r["resources"][0]) for r in role["rules"]} == {
        ("kustomize.toolkit.fluxcd.io", "kustomizations"),
        ("source.toolkit.fluxcd.io", "gitrepositories"),
    }
    for rule in role["rules"]:
        assert rule["resourceNames"] == names and "create" not in rule["verbs"] and "delete" not in rule["verbs"]


def test_argocd_tenant_has_no_reconciler_account():
    objects = tenant_objects("c1", "bob", engine_for("argocd"))
    accounts = _by(objects, "ServiceAccount")
    assert [(a["metadata"]["namespace"], a["metadata"]["name"]) for a in accounts] == [("bob-dev", LEARNER_ACCOUNT)]
    [role] = _by(objects, "Role")
    assert role["metadata"]["namespace"] == "argocd"
    assert role["rules"][0]["resources"] == ["applications"]


def test_tenant_role_grants_no_rbac_and_no_engine_objects():
    [role] = _by(class_objects("c1"), "ClusterRole")
    groups = {g for rule in role["rules"] for g in rule["apiGroups"]}
    assert not groups & {
        "rbac.authorization.k8s.io",
        "argoproj.io",
        "kustomize.toolkit.fluxcd.io",
        "source.toolkit.fluxcd.io",
        "*",
    }


# --------------------------------------------------------------------------- #
# Engine registration per tenant (and unchanged without one)
# --------------------------------------------------------------------------- #
class Captured:
    """An engine whose apply hands back what it would apply."""

    def __init__(self, name, tenant):
        self.engine = engine_for(name, None, tenant)
        self.engine.apply_changed = lambda objects: objects


def _register(name, tenant, namespaces):
    targets = [EnvironmentTarget(env, ns, f"overlays/{env}") for env, ns in namespaces.items()]
    return Captured(name, tenant).engine.register(
        targets, RepoAccess("http://git/alice.git", username="engine", password="pw")
    )


TENANT_NS = {"dev": "alice-dev", "staging": "alice-staging", "prod": "alice-prod"}
LAB_NS = {"dev": "ml-dev", "staging": "ml-staging", "prod": "ml-prod"}


def test_argocd_tenant_project_limits_repo_and_namespaces_and_no_cluster_kinds():
    objects = _register("argocd", "alice", TENANT_NS)
    [project] = _by(objects, "AppProject")
    assert project["metadata"]["name"] == "gitops-lab-alice"
    assert project["spec"]["sourceRepos"] == ["http://git/alice.git"]
    assert [d["namespace"] for d in project["spec"]["destinations"]] == list(TENANT_NS.values())
    assert project["spec"]["clusterResourceWhitelist"] == []
    apps = _by(objects, "Application")
    assert [(a["metadata"]["name"], a["spec"]["project"], a["spec"]["destination"]["namespace"]) for a in apps] == [
        ("gitops-lab-alice-dev", "gitops-lab-alice", "alice-dev"),
        ("gitops-lab-alice-staging", "gitops-lab-alice", "alice-staging"),
        ("gitops-lab-alice-prod", "gitops-lab-alice", "alice-prod"),
    ]
    [secret] = _by(objects, "Secret")
    assert secret["metadata"]["name"] == "gitops-lab-alice-repo"


def test_flux_tenant_kustomizations_impersonate_the_tenant():
    objects = _register("flux", "alice", TENANT_NS)
    kustomizations = _by(objects, "Kustomization")
    assert [k["spec"]["serviceAccountName"] for k in kustomizations] == ["gitops-lab-alice"] * 3
    assert [k["spec"]["sourceRef"]["name"] for k in kustomizations] == [
        "gitops-lab-alice-dev",
        "gitops-lab-alice-staging",
        "gitops-lab-alice-prod",
    ]
    assert {g["spec"]["secretRef"]["name"] for g in _by(objects, "GitRepository")} == {"gitops-lab-alice-git"}


@pytest.mark.parametrize("engine", ["argocd", "flux"])
def test_without_a_tenant_registration_is_what_it_was(engine):
    objects = _register(engine, None, LAB_NS)
    names = sorted(o["metadata"]["name"] for o in objects)
    if engine == "argocd":
        assert names == ["gitops-lab", "gitops-lab-dev", "gitops-lab-prod", "gitops-lab-repo", "gitops-lab-staging"]
        [project] = _by(objects, "AppProject")
        assert project["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    else:
        assert (
            names == ["gitops-lab-dev"] * 2 + ["gitops-lab-git"] + ["gitops-lab-prod"] * 2 + ["gitops-lab-staging"] * 2
        )
        assert all("serviceAccountName" not in k["spec"] for k in _by(objects, "Kustomization"))


# --------------------------------------------------------------------------- #
# The Git server: each learner pushes only their own repository
# --------------------------------------------------------------------------- #
@pytest.fixture
def class_git(tmp_path):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    root = tmp_path / "repos"
    root.mkdir()
    users = ClassCredentials(Credentials("instructor", "i-pw"), Credentials("engine", "e-pw"))
    server = FolderGitServer(root, "http://127.0.0.1:0", auth_file=tmp_path / "users")
    server.provision([RepoGrant("alice", Credentials("alice", "a-pw"))], users)
    running = RunningServer(root, tmp_path / "users", free_port())
    running.start()
    server.base_url = f"http://127.0.0.1:{running.port}"
    yield server, users
    running.stop()


def _push(tmp_path, url, name):
    work = tmp_path / name
    run_git("init", "-q", "-b", "main", str(work))
    make_commit(work, "a.txt", name)
    return run_git("push", url, "main", cwd=work, check=False)


def _with(url, user, password):
    return url.replace("http://", f"http://{user}:{password}@", 1)


def test_a_learner_pushes_their_repository_and_not_anothers(class_git, tmp_path):
    server, users = class_git
    # bob joins after the server started: the users file is read again, no restart
    grants = [RepoGrant("alice", Credentials("alice", "a-pw")), RepoGrant("bob", Credentials("bob", "b-pw"))]
    assert "repository bob created" in server.provision(grants, users)
    alice, bob = server.endpoints("alice").host_url, server.endpoints("bob").host_url
    assert _push(tmp_path, _with(alice, "alice", "a-pw"), "a1").returncode == 0
    refused = _push(tmp_path, _with(bob, "alice", "a-pw"), "a2")
    assert refused.returncode != 0 and "403" in refused.stderr
    assert _push(tmp_path, _with(bob, "bob", "b-pw"), "b1").returncode == 0
    # the instructor writes every repository; the engines read every one and write none
    clone = tmp_path / "clone"
    assert run_git("clone", "-q", _with(bob, "engine", "e-pw"), str(clone), check=False).returncode == 0
    make_commit(clone, "i.txt", "from the instructor")
    assert run_git("push", _with(bob, "instructor", "i-pw"), "main", cwd=clone, check=False).returncode == 0
    make_commit(clone, "e.txt", "from an engine")
    engine_push = run_git("push", _with(bob, "engine", "e-pw"), "main", cwd=clone, check=False)
    assert engine_push.returncode != 0 and "403" in engine_push.stderr
    # a learner who leaves the class loses access
    server.provision(grants[1:], users)
    assert run_git("ls-remote", _with(alice, "alice", "a-pw"), check=False).returncode != 0


def test_users_file_is_private_and_holds_no_password(class_git, tmp_path):
    server, _ = class_git
    text = server.auth_file.read_text()
    assert (server.auth_file.stat().st_mode & 0o777) == 0o600
    assert "a-pw" not in text and "i-pw" not in text
    assert [line.split(":")[0] for line in text.splitlines()] == ["instructor", "engine", "alice"]
    assert text.splitlines()[2].endswith(":alice")


def test_each_learner_gets_their_own_platform_repository_at_v1_0_0_which_only_they_push_to(
    class_git, tmp_path, monkeypatch
):
    """The ci-templates lab's platform repository, per learner, beside their lab repository: seeded at
    v1.0.0 (a re-run changes nothing), found by the lab's own check from the learner's environment,
    released by its step 4 with the learner's credentials, and refused to anyone else, whose platform
    repository is not even readable to them."""
    from gitops_lab.adapters.repo.git import authenticated
    from gitops_lab.adapters.repo.platform import platform_remote_beside, remote_refs
    from gitops_lab.classroom.tenant import learner_grants, seed_learner_platform
    from gitops_lab.labs.actions.context import LabContext
    from gitops_lab.labs.actions.hooks import call_python, check_python
    from gitops_lab.labs.loader import load_lab
    from gitops_lab.reporter import Reporter
    from gitops_lab.resources import labs_dir
    from gitops_lab.state import EnvironmentState
    from gitops_lab.workflows.down import bundle_remote

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    server, users = class_git
    alice, bob = Credentials("alice", "a-pw"), Credentials("bob", "b-pw")
    changed = server.provision(learner_grants("alice", alice) + learner_grants("bob", bob), users)
    assert {"repository alice-ml-platform-pipelines created", "repository bob-ml-platform-pipelines created"} <= set(
        changed
    )
    [line] = [line for line in server.auth_file.read_text().splitlines() if line.startswith("alice:")]
    assert line.endswith(":alice,alice-ml-platform-pipelines")  # one line a learner: server.py keeps one entry a user
    with authenticated(users.writer):  # class create pushes as the instructor
        assert seed_learner_platform(server, "alice") == ["platform repository alice-ml-platform-pipelines seeded"]
        assert seed_learner_platform(server, "bob") == ["platform repository bob-ml-platform-pipelines seeded"]
        assert seed_learner_platform(server, "alice") == []  # a re-run changes nothing
    a_platform = server.endpoints("alice-ml-platform-pipelines").host_url
    b_platform = server.endpoints("bob-ml-platform-pipelines").host_url
    with authenticated(alice):
        assert remote_refs(a_platform) == ({"v1.0.0"}, {"main"})
    # The lab finds it from the learner's lab repository and their environment's tenant
    lab_url = server.endpoints("alice").host_url
    assert platform_remote_beside(lab_url, "alice") == a_platform
    wc = tmp_path / "alice-wc"
    run_git("init", "-q", "-b", "main", str(wc))
    run_git("remote", "add", "origin", lab_url, cwd=wc)
    state = EnvironmentState(name="alice-joined", repo_path=str(wc), remote_url=lab_url, tenant="alice")
    ctx = LabContext(load_lab(labs_dir() / "ci-templates"), wc, Reporter(), 60, state)
    step4 = {"function": "checks:platform_input_released", "args": {"tag": "v1.1.0", "since": "v1.0.0"}}
    with authenticated(alice):
        before = check_python(ctx, step4)
        assert not before.passed and f"{a_platform} has no tag v1.1.0 (tags: v1.0.0)" in before.message
        call_python(ctx, {"function": "checks:release_platform_input", "args": {"tag": "v1.1.0", "since": "v1.0.0"}})
        after = check_python(ctx, step4)
        assert after.passed, after.message
    with authenticated(users.writer):
        assert remote_refs(b_platform) == ({"v1.0.0"}, {"main"})  # bob's is untouched
    # alice may neither push to nor read bob's platform repository; bob pushes to his
    pushed = _push(tmp_path, _with(b_platform, "alice", "a-pw"), "a-to-b")
    assert pushed.returncode != 0 and "403" in pushed.stderr
    read = run_git("ls-remote", _with(b_platform, "alice", "a-pw"), check=False)
    assert read.returncode != 0 and "403" in read.stderr
    clone = tmp_path / "bob-platform"
    assert run_git("clone", "-q", _with(b_platform, "bob", "b-pw"), str(clone), check=False).returncode == 0
    make_commit(clone, "b.txt", "bob's change")
    assert run_git("push", _with(b_platform, "bob", "b-pw"), "main", cwd=clone, check=False).returncode == 0
    # class delete keeps it as a bundle, v1.1.0 and all; a repository that is not there is no bundle
    with authenticated(users.writer):
        bundle = bundle_remote(a_platform, tmp_path / "backups", "ml-platform-pipelines")
        assert bundle_remote(server.endpoints("carol-ml-platform-pipelines").host_url, tmp_path / "b", "x") is None
    assert bundle is not None and bundle.name.startswith("ml-platform-pipelines-")
    heads = run_git("bundle", "list-heads", str(bundle)).stdout
    assert "refs/tags/v1.1.0" in heads and "refs/tags/v1.0.0" in heads
    assert server.remove(["alice", "alice-ml-platform-pipelines"]) == ["alice", "alice-ml-platform-pipelines"]


def test_a_plain_folder_server_says_it_enforces_nothing(tmp_path):
    assert FolderGitServer(tmp_path, "http://127.0.0.1:1").enforces_access is False
    with pytest.raises(UsageError):
        FolderGitServer(tmp_path, "file:///srv/git")


def test_class_kit_paths_are_under_the_state_folder(tmp_path, monkeypatch):
    from gitops_lab.classroom.record import class_dir, kit_dir, learner_env_name
    from gitops_lab.state import environment_dir

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    assert kit_dir("c1", "alice") == tmp_path / "state" / "c1" / "class" / "kits" / "alice"
    assert environment_dir(learner_env_name("c1", "alice")).parent.parent == class_dir("c1")


# --------------------------------------------------------------------------- #
# The commands' errors: one line naming the problem and the fix, exit 2
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "args, problem",
    [
        (("class", "status"), "no class is set up under the environment name 'gitops-lab'"),
        (("class", "status", "--forge-url", "http://h"), "--forge-url and --forge-credentials go together"),
        (("class", "reset", "--learner", "x"), "no class is set up"),
        (
            ("class", "create", "--count", "2", "--learners", "f", "--git-root", ".", "--git-base-url", "http://h"),
            "say who is in the class; pass either --learners FILE or --count N",
        ),
        (
            ("class", "create", "--count", "2", "--git-root", ".", "--git-base-url", "ssh://h"),
            "the Git base URL 'ssh://h' is not http(s)",
        ),
        (
            ("class", "create", "--count", "2", "--git-server", "folder", "--git-base-url", "http://h"),
            "a folder Git server needs --git-root",
        ),
        (
            (
                "class",
                "create",
                "--count",
                "2",
                "--git-root",
                ".",
                "--git-base-url",
                "http://h",
                "--git-node-port",
                "30100",
            ),
            "--git-node-port is for the in-cluster Git server",
        ),
        (
            ("class", "create", "--count", "2", "--git-auth-file", "users"),
            "--git-auth-file name a Git server of your own, not the in-cluster one",
        ),
        (
            ("class", "create", "--count", "2", "--git-base-url", "git@h:x"),
            "the Git base URL 'git@h:x' is not http(s)",
        ),
    ],
)
def test_class_commands_fail_in_one_line(cli, args, problem):
    result = cli(*args)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and problem in line


def test_join_refuses_a_folder_that_is_no_kit(cli, tmp_path):
    result = cli("class", "join", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path} is not a learner kit (no readable kit.json)" in result.stderr


# --------------------------------------------------------------------------- #
# class status: an environment is ok, reconciling or failing
# --------------------------------------------------------------------------- #
def _report(**changes):
    from gitops_lab.workflows.status import EnvironmentReport

    fields = dict(
        environment="dev",
        namespace="a-dev",
        engine="flux",
        commit="abc",
        sync="Applied",
        health="Ready",
        version="v2",
        git_version="v2",
        replicas_ready=1,
        replicas_desired=1,
        message="",
    )
    return EnvironmentReport(**{**fields, **changes})


@pytest.mark.parametrize(
    "changes, state",
    [
        ({}, "ok"),
        ({"health": "Unknown"}, "reconciling"),  # Flux while it re-reads Git: the cluster still serves Git's version
        ({"sync": "Synced", "health": "Progressing"}, "reconciling"),
        ({"health": "Unknown", "replicas_ready": 0}, "failing"),
        ({"health": "Unknown", "version": "v3"}, "failing"),  # drift is never "reconciling"
        ({"health": "NotReady"}, "failing"),
        ({"sync": "Failed", "health": "Unknown"}, "failing"),
    ],
)
def test_environment_state_in_class_status(changes, state):
    from gitops_lab.classroom.status import environment_state

    assert environment_state(_report(**changes)) == state


def test_argocd_status_names_the_resource_a_project_refuses():
    """A tenant's overlay pointed at another learner's namespace: Argo CD refuses, and status says why."""
    from gitops_lab.adapters.engines.argocd import status_of

    app = {
        "status": {
            "sync": {"status": "OutOfSync"},
            "health": {"status": "Healthy"},
            "operationState": {
                "phase": "Failed",
                "message": "one or more synchronization tasks are not valid (retried 5 times).",
                "syncResult": {
                    "resources": [
                        {
                            "kind": "Deployment",
                            "name": "model-server",
                            "status": "SyncFailed",
                            "message": "namespace learner-02-dev is not permitted in project 'gitops-lab-learner-01'",
                        },
                        {"kind": "Service", "name": "model-server", "status": "Synced", "message": "unchanged"},
                    ]
                },
            },
        }
    }
    message = status_of("dev", app).message
    assert "Deployment/model-server: namespace learner-02-dev is not permitted in project" in message
    assert "unchanged" not in message


@pytest.mark.parametrize("name", ["c1/class/learners/..", "c1/../x", "c1//alice", "/abs", "a/b/c/d/e"])
def test_a_learners_environment_name_cannot_climb_out_of_the_state_folder(name, tmp_path, monkeypatch):
    from gitops_lab.errors import UsageError
    from gitops_lab.state import environment_dir

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(UsageError):
        environment_dir(name)


# --------------------------------------------------------------------------- #
# The class's Git server in the cluster: what it applies (running it: tests/e2e/kind/test_kind_e2e.py)
# --------------------------------------------------------------------------- #
def _cluster_server(**kw):
    from gitops_lab.adapters.gitserver.clusterclass import ClusterClassGitServer

    return ClusterClassGitServer("spring", **kw)


def test_the_in_cluster_class_server_gives_each_learner_only_their_repository():
    server = _cluster_server(base_url="http://git.example:80")
    users = ClassCredentials(Credentials("instructor", "i-pw"), Credentials("engine", "e-pw"))
    grants = [RepoGrant("bob", Credentials("bob", "b-pw")), RepoGrant("alice", Credentials("alice", "a-pw"))]
    objects = {o["kind"]: o for o in server.manifests(grants, users)}
    assert {o["metadata"]["namespace"] for k, o in objects.items() if k != "Namespace"} == {"spring-class-git"}
    assert objects["Namespace"]["metadata"]["name"] == "spring-class-git"
    text = objects["Secret"]["stringData"]["users"]
    assert "a-pw" not in text and "b-pw" not in text
    assert [line.split(":")[0] for line in text.splitlines()] == ["instructor", "engine", "alice", "bob"]
    assert text.splitlines()[2].endswith(":alice") and text.splitlines()[3].endswith(":bob")
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]}["GIT_REPOS"] == "alice,bob"
    assert objects["Service"]["spec"]["ports"][0]["nodePort"] == 30081
    assert all(o["metadata"]["labels"]["gitops-lab.io/class"] == "spring" for o in objects.values())
    urls = server.endpoints("alice")
    assert urls.host_url == "http://git.example:80/alice.git"
    assert urls.cluster_url == "http://gitserver.spring-class-git.svc.cluster.local:8080/alice.git"


def test_the_in_cluster_class_server_holds_each_learners_platform_repository_for_them_alone():
    from gitops_lab.classroom.tenant import learner_grants

    server = _cluster_server(base_url="http://git.example:80")
    users = ClassCredentials(Credentials("instructor", "i-pw"), Credentials("engine", "e-pw"))
    grants = learner_grants("bob", Credentials("bob", "b-pw")) + learner_grants("alice", Credentials("alice", "a-pw"))
    objects = {o["kind"]: o for o in server.manifests(grants, users)}
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]}["GIT_REPOS"] == (
        "alice,alice-ml-platform-pipelines,bob,bob-ml-platform-pipelines"
    )
    lines = objects["Secret"]["stringData"]["users"].splitlines()
    assert [line.split(":")[0] for line in lines] == ["instructor", "engine", "alice", "bob"]
    assert lines[2].endswith(":alice,alice-ml-platform-pipelines")
    assert lines[3].endswith(":bob,bob-ml-platform-pipelines")
    assert (
        server.endpoints("alice-ml-platform-pipelines").host_url
        == "http://git.example:80/alice-ml-platform-pipelines.git"
    )


def test_a_new_learner_restarts_the_in_cluster_class_server():
    server = _cluster_server(base_url="http://h")
    users = ClassCredentials(Credentials("instructor", "i"), Credentials("engine", "e"))
    one = [RepoGrant("alice", Credentials("alice", "a"))]
    two = one + [RepoGrant("bob", Credentials("bob", "b"))]

    def config_hash(grants):
        [dep] = [o for o in server.manifests(grants, users) if o["kind"] == "Deployment"]
        return dep["spec"]["template"]["metadata"]["annotations"]["gitops-lab.io/config-hash"]

    assert config_hash(one) == config_hash(one) != config_hash(two)


def test_the_in_cluster_class_server_is_reached_at_a_node_address_by_default():
    from types import SimpleNamespace as NS

    def node(ready, *addresses):
        return NS(
            status=NS(
                conditions=[NS(type="Ready", status="True" if ready else "False")],
                addresses=[NS(type=t, address=a) for t, a in addresses],
            )
        )

    nodes = [node(False, ("InternalIP", "10.0.0.9")), node(True, ("Hostname", "n2"), ("InternalIP", "10.0.0.2"))]
    kube = NS(core=lambda: NS(list_node=lambda: NS(items=nodes)))
    assert _cluster_server(kube=kube, node_port=31000).endpoints("a").host_url == "http://10.0.0.2:31000/a.git"
    nodes.append(node(True, ("ExternalIP", "203.0.113.7")))
    assert _cluster_server(kube=kube).endpoints("a").host_url == "http://203.0.113.7:30081/a.git"


def test_the_in_cluster_class_server_checks_its_options():
    with pytest.raises(UsageError, match="NodePort 8080 is not between 30000 and 32767"):
        _cluster_server(node_port=8080)
    from gitops_lab.adapters.gitserver.clusterclass import ClusterClassGitServer

    with pytest.raises(UsageError, match="too long"):
        ClusterClassGitServer("x" * 60)


def test_a_class_keeps_the_git_server_it_was_created_with(tmp_path, monkeypatch):
    from gitops_lab.reporter import Reporter
    from gitops_lab.classroom.create import ClassOptions, create
    from gitops_lab.classroom.record import ClassRecord, GitServerRecord, git_server_record

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    ClassRecord("gitops-lab", "flux", None, None, GitServerRecord("folder", "/srv/git", "http://h"), ["a"]).save()
    options = ClassOptions("flux", git=git_server_record(None, None, None, None, None, None))
    with pytest.raises(UsageError, match=r"keeps its repositories on a folder Git server \(/srv/git\)"):
        create("gitops-lab", ["b"], options, Reporter())


def test_down_refuses_while_a_class_lives_in_the_environment(cli, tmp_path, monkeypatch):
    from gitops_lab.classroom.record import ClassRecord, GitServerRecord, class_dir

    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    ClassRecord("gitops-lab", "flux", None, None, GitServerRecord("in-cluster", base_url="http://h:1"), ["a"]).save()
    kit = class_dir("gitops-lab") / "kits" / "a"
    kit.mkdir(parents=True)
    (kit / "kit.json").write_text("{}")
    result = cli("down")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: a class lives in the environment 'gitops-lab'")
    assert line.endswith("run `gitops-lab class delete` first (it bundles every learner's repository), then this again")
    assert (kit / "kit.json").exists() and (class_dir("gitops-lab") / "class.json").exists()

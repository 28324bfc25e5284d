"""A class of 10 on the testbed, for Argo CD and for Flux, with real RBAC.

The instructor creates the class through the CLI against the testbed's API
server (admin credentials); the Git server is gitops-lab's own server.py run
on loopback with a users file, so per-repository push rights are enforced for
real. (The testbed's own Git fixture checks no credentials at all, so it could
not show that a push to another learner's repository fails.)

Then, with learner-01's kit (a ServiceAccount token, against the real API
server): what they may and may not do; their labs and commands run unchanged;
their promotion changes nothing of learner-02's; resetting them leaves
learner-02 as it was; `class status` reports both; `class delete` cleans up.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers.gitutil import remote_head
from helpers.golden import assert_golden, settled

from gitops_lab.adapters.repo.git import PASSWORD_VAR, USERNAME_VAR

LEARNERS = 10
A, B = "learner-01", "learner-02"
LABEL = "gitops-lab.io/model-version"
ENGINE_NS = {"argocd": "argocd", "flux": "flux-system"}


@dataclass
class Classroom:
    engine: str
    cli: Callable
    cluster: Any
    state: Path
    git_root: Path
    git_url: str
    switch: Callable
    users_file: Path | None = None
    server: object = None

    def kit(self, learner: str) -> Path:
        return self.state / "gitops-lab" / "class" / "kits" / learner

    def create(self, count: int, *extra: str):
        """`class create` of ``count`` learners on the testbed, their repositories on the loopback server."""
        return self.cli(
            "class",
            "create",
            "--count",
            str(count),
            "--engine",
            self.engine,
            "--kubeconfig",
            self.cluster.kubeconfig,
            "--git-root",
            str(self.git_root),
            "--git-base-url",
            self.git_url,
            "--git-auth-file",
            str(self.users_file),  # set by the fixture
            *extra,
        )


@pytest.fixture(params=["argocd", "flux"])
def classroom(request, testbed_cluster, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gitops_lab.cli import main
    from helpers.gitservers import RunningServer, free_port
    from testbed.binaries import bin_dir

    engine = request.param
    request.getfixturevalue(f"testbed_{engine}")
    monkeypatch.setenv("PATH", f"{os.environ['PATH']}{os.pathsep}{bin_dir()}")
    for var in ("GITOPS_LAB_REPO", "GITOPS_LAB_LABS_DIR", USERNAME_VAR, PASSWORD_VAR):
        monkeypatch.delenv(var, raising=False)
    root, users = tmp_path / "git", tmp_path / "git-users"
    root.mkdir()
    users.write_text("")
    server = RunningServer(root, users, free_port())
    server.start()
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    def switch(state: Path) -> None:
        """Act as someone else: their state folder, no Git credentials left from the last one."""
        monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(state))
        for var in (USERNAME_VAR, PASSWORD_VAR):
            monkeypatch.delenv(var, raising=False)

    instructor = tmp_path / "instructor"
    switch(instructor)
    room = Classroom(engine, cli, testbed_cluster, instructor, root, f"http://127.0.0.1:{server.port}", switch)
    room.users_file = users
    room.server = server
    yield room
    switch(instructor)
    if (instructor / "gitops-lab" / "class" / "class.json").exists():
        cli("class", "delete", "--timeout", "120")
    server.stop()


@contextmanager
def learner_api(kubeconfig: Path):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    finally:
        api.close()


def status_of(call) -> int:
    from kubernetes.client import ApiException

    try:
        call()
    except ApiException as exc:
        return exc.status
    return 200


def served(apps, learner: str) -> dict[str, str]:
    return {
        env: apps.read_namespaced_deployment("model-server", f"{learner}-{env}").spec.template.metadata.labels[LABEL]
        for env in ("dev", "staging", "prod")
    }


def admin_url(room: Classroom, learner: str) -> str:
    """The repository URL with the instructor's credentials (for reading heads in the test)."""
    creds = json.loads((room.state / "gitops-lab" / "class" / "credentials.json").read_text())["instructor"]
    return room.git_url.replace("http://", f"http://{creds['username']}:{creds['password']}@") + f"/{learner}.git"


def _learner_env(room: Classroom, learner: str):
    """The instructor's view of a learner's tenant (admin credentials)."""
    from gitops_lab.classroom.record import load_class
    from gitops_lab.classroom.tenant import open_learner

    return open_learner(load_class("gitops-lab"), learner)


def refused_by_engine(room: Classroom, learner: str, env: str, commit: str) -> None:
    """Until the learner's engine reports that ``commit`` may not be applied (forbidden, not permitted)."""
    from gitops_lab.adapters.engines.argocd import API
    from gitops_lab.adapters.engines.flux import KUSTOMIZE_API
    from gitops_lab.deadline import Deadline
    from gitops_lab.kube.wait import wait_for

    lab = _learner_env(room, learner)
    engine = lab.engine
    engine.request_reconcile(env)
    api, kind = (API, "Application") if engine.name == "argocd" else (KUSTOMIZE_API, "Kustomization")

    def verdict(obj):
        message = engine.status(env).message if obj else ""
        return ("forbidden" in message or "not permitted" in message), message or "no message yet"

    wait_for(
        engine.applier,
        api,
        kind,
        engine.object_name(env),
        engine.namespace,
        verdict,
        Deadline(120),
        f"{engine.display_name} to refuse {commit[:7]} for {learner}/{env}",
    )


def served_again(room: Classroom, learner: str, commit: str) -> None:
    from gitops_lab.deadline import Deadline
    from gitops_lab.reporter import Reporter
    from gitops_lab.adapters.repo.layout import ENVIRONMENTS
    from gitops_lab.workflows.converge import converge

    lab = _learner_env(room, learner)
    subprocess.run(["git", "-C", str(lab.repo), "fetch", "--quiet", admin_url(room, learner), "main"], check=True)
    converge(lab, ENVIRONMENTS, commit, Deadline(120), Reporter())


def release_platform_as_learner(learner: str, kit: dict) -> None:
    """In the environment `class join` made: the ci-templates lab's step 4 finds the learner's own platform
    repository, not yet at v1.1.0; its solution releases v1.1.0 there with the learner's Git credentials;
    then the check passes."""
    from gitops_lab.adapters.gitserver.credentials import Credentials
    from gitops_lab.adapters.repo.git import authenticated
    from gitops_lab.labs.actions.context import LabContext
    from gitops_lab.labs.actions.hooks import call_python, check_python
    from gitops_lab.labs.loader import load_lab
    from gitops_lab.reporter import Reporter
    from gitops_lab.resources import labs_dir
    from gitops_lab.state import load_state

    state = load_state("gitops-lab")
    assert state.tenant == learner
    ctx = LabContext(load_lab(labs_dir() / "ci-templates"), Path(state.repo_path or "."), Reporter(), 120, state)
    args = {"tag": "v1.1.0", "since": "v1.0.0"}
    with authenticated(Credentials(kit["git_username"], kit["git_password"])):
        before = check_python(ctx, {"function": "checks:platform_input_released", "args": args})
        assert not before.passed and f"{kit['platform_git_url']} has no tag v1.1.0 (tags: v1.0.0)" in before.message
        call_python(ctx, {"function": "checks:release_platform_input", "args": args})
        after = check_python(ctx, {"function": "checks:platform_input_released", "args": args})
        assert after.passed, after.message


def test_a_class_of_ten_isolated_tenants(classroom, tmp_path):
    from kubernetes import client

    room, cli = classroom, classroom.cli

    def create(count: int, *extra: str):
        return room.create(count, *extra, "--output", "json")

    created = create(LEARNERS, "--timeout", "300")
    assert created.exit_code == 0, created.output
    result = json.loads(created.stdout)
    assert sorted(result["kits"]) == [f"learner-{i:02d}" for i in range(1, LEARNERS + 1)]
    assert result["git_enforces_access"] is True
    assert result["git_server"] == f"{room.git_url} (your server, serving {room.git_root})"
    for learner in (A, B):
        for name in ("kubeconfig", "kit.json"):
            assert stat.S_IMODE((room.kit(learner) / name).stat().st_mode) == 0o600

    admin = room.cluster.api_client()
    admin_apps = client.AppsV1Api(admin)
    for i in range(1, LEARNERS + 1):
        assert served(admin_apps, f"learner-{i:02d}") == {"dev": "v2", "staging": "v1", "prod": "v1"}

    # each learner's own platform repository (the ci-templates lab), beside their lab repository, at v1.0.0
    for learner in (A, B):
        refs = subprocess.run(
            ["git", "ls-remote", admin_url(room, f"{learner}-ml-platform-pipelines")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert {line.split("\t")[1] for line in refs.splitlines()} >= {"refs/heads/main", "refs/tags/v1.0.0"}
        assert "refs/tags/v1.1.0" not in refs

    again = create(2)
    assert again.exit_code == 0, again.output
    assert not [c for c in json.loads(again.stdout)["changed"]], "a second create changes nothing"

    status = cli("class", "status", "--output", "json")
    assert status.exit_code == 0, status.output
    rows = {r["learner"]: r for r in json.loads(status.stdout)}
    assert len(rows) == LEARNERS and all(r["healthy"] and r["lab"] is None for r in rows.values())

    # -- learner-01's kit against the real API server ----------------------------------
    kit = json.loads((room.kit(A) / "kit.json").read_text())
    with learner_api(room.kit(A) / "kubeconfig") as (core, apps, custom):
        assert apps.read_namespaced_deployment("model-server", f"{A}-prod").spec.replicas == 2
        assert status_of(lambda: apps.read_namespaced_deployment("model-server", f"{B}-prod")) == 403
        assert status_of(lambda: core.list_namespaced_pod(f"{B}-dev")) == 403
        assert (
            status_of(
                lambda: core.create_namespaced_config_map(
                    f"{B}-dev", {"metadata": {"name": "from-a"}, "data": {"x": "1"}}
                )
            )
            == 403
        )
        assert (
            status_of(lambda: apps.patch_namespaced_deployment("model-server", f"{B}-prod", {"spec": {"replicas": 0}}))
            == 403
        )
        assert status_of(lambda: core.list_namespaced_secret(ENGINE_NS[room.engine])) == 403
        assert status_of(lambda: core.create_namespace({"metadata": {"name": "a-new-one"}})) == 403
        core.create_namespaced_config_map(f"{A}-dev", {"metadata": {"name": "mine"}, "data": {"x": "1"}})
        assert core.read_namespaced_config_map("mine", f"{A}-dev").data == {"x": "1"}
        group, version, plural, takeover = {
            "argocd": ("argoproj.io", "v1alpha1", "applications", {"spec": {"project": f"gitops-lab-{B}"}}),
            "flux": (
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "kustomizations",
                {"spec": {"serviceAccountName": f"gitops-lab-{B}"}},
            ),
        }[room.engine]
        ns = ENGINE_NS[room.engine]
        # their own engine object: readable and annotatable, but not re-pointed elsewhere
        assert custom.get_namespaced_custom_object(group, version, ns, plural, f"gitops-lab-{A}-dev")
        assert status_of(
            lambda: custom.patch_namespaced_custom_object(group, version, ns, plural, f"gitops-lab-{A}-dev", takeover)
        ) in (403, 422)
        assert (
            status_of(
                lambda: custom.patch_namespaced_custom_object(
                    group, version, ns, plural, f"gitops-lab-{A}-dev", {"metadata": {"annotations": {"x": "y"}}}
                )
            )
            == 200
        )
        # anyone else's: not even readable
        assert (
            status_of(lambda: custom.get_namespaced_custom_object(group, version, ns, plural, f"gitops-lab-{B}-dev"))
            == 403
        )

    # -- learner-01's Git credentials push only their repository -------------------------
    mine = tmp_path / "mine"
    subprocess.run(
        ["git", "clone", "-q", kit["git_url"].replace("http://", f"http://{A}:{kit['git_password']}@"), str(mine)],
        check=True,
    )
    b_url = kit["git_url"].replace(f"/{A}.git", f"/{B}.git")
    pushed = subprocess.run(
        ["git", "-C", str(mine), "push", b_url.replace("http://", f"http://{A}:{kit['git_password']}@"), "main:main"],
        capture_output=True,
        text=True,
    )
    assert pushed.returncode != 0 and "403" in pushed.stderr
    # nor learner-02's platform repository; their own is named in the kit
    assert kit["platform_git_url"] == f"{room.git_url}/{A}-ml-platform-pipelines.git"
    b_platform = kit["platform_git_url"].replace(f"/{A}-ml-platform-pipelines.git", f"/{B}-ml-platform-pipelines.git")
    pushed = subprocess.run(
        [
            "git",
            "-C",
            str(mine),
            "push",
            b_platform.replace("http://", f"http://{A}:{kit['git_password']}@"),
            "main:main",
        ],
        capture_output=True,
        text=True,
    )
    assert pushed.returncode != 0 and "403" in pushed.stderr

    # -- learner-01's engine cannot deploy into learner-02's namespaces, whatever their repository says
    b_dev = admin_apps.read_namespaced_deployment("model-server", f"{B}-dev")
    overlay = mine / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace(f"namespace: {A}-dev", f"namespace: {B}-dev"))
    a_url = kit["git_url"].replace("http://", f"http://{A}:{kit['git_password']}@")
    for args in (("commit", "-qam", "Deploy into B's namespace"), ("push", "-q", a_url, "main")):
        subprocess.run(["git", "-C", str(mine), "-c", "user.name=a", "-c", "user.email=a@x", *args], check=True)
    refused_by_engine(
        room,
        A,
        "dev",
        subprocess.run(
            ["git", "-C", str(mine), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip(),
    )
    after = admin_apps.read_namespaced_deployment("model-server", f"{B}-dev")
    assert (after.metadata.generation, after.metadata.labels) == (b_dev.metadata.generation, b_dev.metadata.labels)
    for args in (("revert", "--no-edit", "HEAD"), ("push", "-q", a_url, "main")):
        subprocess.run(
            ["git", "-C", str(mine), "-c", "user.name=a", "-c", "user.email=a@x", *args],
            check=True,
            capture_output=True,
        )
    served_again(
        room,
        A,
        subprocess.run(
            ["git", "-C", str(mine), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip(),
    )

    # -- learner-02 promotes, so their state differs from the seed -------------------------
    b_before = {}
    for learner, state in ((B, tmp_path / "learner-b"), (A, tmp_path / "learner-a")):
        room.switch(state)
        joined = cli("class", "join", str(room.kit(learner)))
        assert joined.exit_code == 0, joined.output
        promoted = cli("promote", "--from", "dev", "--to", "staging", "--timeout", "120")
        assert promoted.exit_code == 0, promoted.output
        if learner == B:
            b_before = {
                "head": remote_head(admin_url(room, B)),
                "served": served(admin_apps, B),
                "generation": admin_apps.read_namespaced_deployment("model-server", f"{B}-prod").metadata.generation,
            }

    # -- learner-01's commands and labs, unchanged, with their kit -------------------------
    assert served(admin_apps, A)["staging"] == "v2"
    assert f"Your platform repository (lab ci-templates): {kit['platform_git_url']}" in joined.stdout
    release_platform_as_learner(A, kit)
    b_platform_refs = subprocess.run(
        ["git", "ls-remote", "--tags", admin_url(room, f"{B}-ml-platform-pipelines")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "refs/tags/v1.0.0" in b_platform_refs and "refs/tags/v1.1.0" not in b_platform_refs
    assert cli("status").exit_code == 0
    rolled = cli("rollback", "--env", "staging", "--timeout", "120")
    assert rolled.exit_code == 0, rolled.output
    assert served(admin_apps, A)["staging"] == "v1"
    started = cli("lab", "start", "gitops-basics", "--timeout", "120")
    assert started.exit_code == 0, started.output
    checked = cli("lab", "check")
    assert checked.exit_code == 1 and "✗" in checked.stdout  # the step is not done yet: said so
    solved = cli("lab", "solve", "--timeout", "120")
    assert solved.exit_code == 0, solved.output
    assert admin_apps.read_namespaced_deployment("model-server", f"{A}-dev").spec.replicas == 2
    # A's promotion, rollback and lab changed nothing of B's
    assert remote_head(admin_url(room, B)) == b_before["head"]
    assert served(admin_apps, B) == b_before["served"] == {"dev": "v2", "staging": "v2", "prod": "v1"}
    assert admin_apps.read_namespaced_deployment("model-server", f"{B}-dev").spec.replicas == 1

    # -- the instructor's view, and a reset of learner-01 alone ------------------------------
    room.switch(room.state)
    status = cli("class", "status", "--learner", A, "--learner", B, "--output", "json")
    assert status.exit_code == 0, status.output
    rows = {r["learner"]: r for r in json.loads(status.stdout)}
    assert (rows[A]["lab"], rows[A]["step"], rows[A]["checks_passing"], rows[A]["steps"]) == (
        "gitops-basics",
        "undo-with-git",
        1,
        3,
    )
    assert rows[B]["lab"] is None and rows[B]["environments"]["staging"]["version"] == "v2"
    table = cli("class", "status")
    assert table.stdout.splitlines()[0].split() == ["LEARNER", "LAB", "STEP", "CHECKS", "DEV", "STAGING", "PROD"]

    reset = cli("class", "reset", "--learner", A, "--timeout", "120")
    assert reset.exit_code == 0, reset.output
    a_after_reset = remote_head(admin_url(room, A))
    assert served(admin_apps, A) == {"dev": "v2", "staging": "v1", "prod": "v1"}
    assert admin_apps.read_namespaced_deployment("model-server", f"{A}-dev").spec.replicas == 1
    assert remote_head(admin_url(room, B)) == b_before["head"]
    assert served(admin_apps, B) == b_before["served"]
    assert (
        admin_apps.read_namespaced_deployment("model-server", f"{B}-prod").metadata.generation == b_before["generation"]
    )

    # -- a reset to a lab's start point starts the lab for a learner who had not ---------------
    started_b = cli("class", "reset", "--learner", B, "--lab", "gitops-basics", "--timeout", "120", "--output", "json")
    assert started_b.exit_code == 0, started_b.output
    assert [(r["learner"], r["lab"]) for r in json.loads(started_b.stdout)] == [(B, "gitops-basics")]
    tags = subprocess.run(
        ["git", "ls-remote", "--tags", admin_url(room, B)], check=True, capture_output=True, text=True
    ).stdout
    assert "refs/tags/gitops-lab/lab/gitops-basics/start" in tags
    row = json.loads(cli("class", "status", "--learner", B, "--output", "json").stdout)[0]
    assert (row["lab"], row["step"], row["healthy"]) == ("gitops-basics", "scale-dev", True)
    assert remote_head(admin_url(room, A)) == a_after_reset

    # -- the Git server down: status still shows every learner, as last fetched, and says why ----
    room.server.stop()
    try:
        down = cli("class", "status", "--learner", A, "--learner", B, "--output", "json")
    finally:
        room.server.start()
    assert down.exit_code == 1
    rows = {r["learner"]: r for r in json.loads(down.stdout)}
    assert rows[B]["lab"] == "gitops-basics" and rows[A]["environments"]["prod"]["version"] == "v1"
    for row in rows.values():
        assert row["healthy"] is False and row["git_problem"].startswith("cannot fetch their repository")
    assert json.loads(cli("class", "status", "--learner", A, "--output", "json").stdout)[0]["git_problem"] == ""

    # -- --timeout is one deadline for the whole class: a reset of all ten with 1s stops at it, names it,
    #    and leaves every learner it did not start on as they were --------------------------------
    everyone = [f"learner-{i:02d}" for i in range(1, LEARNERS + 1)]
    heads = {learner: remote_head(admin_url(room, learner)) for learner in everyone}
    late = cli("class", "reset", "--timeout", "1")
    assert late.exit_code == 3, late.output
    line = late.stderr.strip().splitlines()[-1]
    assert line.startswith("error: the 1s deadline of `class reset` (--timeout, one for the whole class) passed")
    reset_ones, not_started = re.search(r"; reset: (.*?); not started: (.*?); run ", line).groups()
    not_started_ones = [] if not_started == "nobody" else not_started.split(", ")
    assert not_started_ones[-1:] == everyone[-1:]  # ten resets do not fit in 1s: the class stopped at it
    for learner in not_started_ones:
        assert remote_head(admin_url(room, learner)) == heads[learner], learner
    for learner in [] if reset_ones == "nobody" else reset_ones.split(", "):
        assert remote_head(admin_url(room, learner)) != heads[learner], learner

    # -- delete: tenants, repositories and kits go; the repositories are kept as bundles ------
    deleted = cli("class", "delete", "--timeout", "120", "--output", "json")
    assert deleted.exit_code == 0, deleted.output
    gone = json.loads(deleted.stdout)
    # each learner's lab repository and platform repository
    assert len(gone["learners"]) == LEARNERS and len(gone["backups"]) == 2 * LEARNERS
    [a_platform_bundle] = [b for b in gone["backups"] if f"/{A}/ml-platform-pipelines-" in b]
    heads = subprocess.run(
        ["git", "bundle", "list-heads", a_platform_bundle], check=True, capture_output=True, text=True
    ).stdout
    assert "refs/tags/v1.1.0" in heads  # what learner-01 released is kept
    assert not list(room.git_root.glob("learner-*.git"))
    assert not room.kit(A).exists()
    core = client.CoreV1Api(admin)
    assert not [ns.metadata.name for ns in core.list_namespace().items if ns.metadata.name.startswith("learner-")]
    admin.close()


def test_the_in_cluster_git_server_needs_a_default_storage_class(classroom):
    # The testbed has no StorageClass: the server's volume could never bind, so class create says so
    # before it applies anything (the server running for real: tests/e2e/kind/test_kind_e2e.py).
    from kubernetes import client

    room = classroom
    result = room.cli(
        "class", "create", "--count", "2", "--engine", room.engine, "--kubeconfig", room.cluster.kubeconfig
    )
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: the cluster has no default StorageClass (StorageClasses: none)")
    assert "--git-root" in line
    namespaces = {n.metadata.name for n in client.CoreV1Api(room.cluster.api_client()).list_namespace().items}
    assert not namespaces & {"gitops-lab-class-git", "learner-01-dev"}
    assert not (room.state / "gitops-lab" / "class" / "class.json").exists()


def test_class_status_of_a_learner_in_a_lab_and_one_not_matches_its_golden(classroom, tmp_path):
    """`class status` (text and JSON) of a class of two, learner-01 in gitops-basics, compared whole with
    tests/testdata/golden/class-status-<engine>.*, taken once every environment is ok."""
    room = classroom
    created = room.create(2, "--timeout", "300")
    assert created.exit_code == 0, created.output
    started = room.cli("class", "reset", "--learner", A, "--lab", "gitops-basics", "--timeout", "120")
    assert started.exit_code == 0, started.output

    def every_environment_ok(got: tuple) -> bool:
        text, as_json = got
        if text.exit_code or as_json.exit_code:
            return False
        rows = json.loads(as_json.stdout)
        return all(e["state"] == "ok" for row in rows for e in row["environments"].values())

    text, as_json = settled(
        lambda: (room.cli("class", "status"), room.cli("class", "status", "--output", "json")), every_environment_ok
    )
    assert every_environment_ok((text, as_json)), (text.output, as_json.output)
    assert_golden(f"class-status-{room.engine}.txt", text.stdout, tmp_path)
    assert_golden(f"class-status-{room.engine}.json", as_json.stdout, tmp_path)

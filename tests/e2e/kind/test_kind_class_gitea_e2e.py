"""`gitops-lab class create --git-server gitea` on real kind (the kind bed, Gitea's image built there).

A class of two beside a lab brought up with Gitea (so Gitea's image is on the node, `--preload`), then:
- the class's own Gitea runs in ``<name>-class-git``, its organisation named after the class;
- a learner pushes their own repository, Gitea refuses them their classmate's, and they read the classmate's;
- a learner cannot approve their own design pull request;
- `class reviews assign` and `class status` find the class's forge in its record (no --forge-url): the
  classmate is assigned, approves, and the REVIEWS column says so;
- `class delete` takes the class's Gitea away and leaves the lab's.
The API-level provisioning (organisation, accounts, grants, a learner leaving) is tested on the testbed's
Gitea in tests/e2e/testbed/test_class_gitea_testbed.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.designdoc import AGREEING, push_design
from helpers.gitutil import run_git

from kindbed.fixtures import wait_for_free_lab_ports


DENIED = "User permission denied for writing"


@pytest.fixture(scope="module")
def class_env(kind_bed):
    name = "e2e-gitea-class"
    wait_for_free_lab_ports()
    kind_bed.gitops_lab(
        "up",
        "--engine",
        "flux",
        "--git-server",
        "gitea",
        "--preload",
        "--engine-manifests",
        str(kind_bed.manifests),
        "--timeout",
        "900",
        name=name,
    )
    yield kind_bed, name
    kind_bed.gitops_lab("down", name=name, check=False)


def test_a_class_of_two_on_gitea_is_isolated_and_reviews_each_other(class_env, tmp_path):
    from kubernetes import client

    from gitops_lab.adapters.forge.gitea import PUSH_SETTLE_SECONDS, Account, GiteaAPI
    from gitops_lab.errors import ForgeError

    bed, name = class_env
    created = bed.gitops_lab(
        "class", "create", "--count", "2", "--engine", "flux", "--git-server", "gitea", "--timeout", "600",
        "--output", "json", name=name,
    ).json()  # fmt: skip
    assert created["learners"] == ["learner-01", "learner-02"] and created["git_enforces_access"] is True
    core = client.CoreV1Api(bed.api(name))
    git_namespace = f"{name}-class-git"
    pods = core.list_namespaced_pod(git_namespace, label_selector="app.kubernetes.io/name=gitea").items
    assert [p.status.phase for p in pods] == ["Running"]
    node_ip = core.list_node().items[0].status.addresses[0].address
    forge = f"http://{node_ip}:30081"
    assert created["git_server"].startswith(f"{forge}/{name} (Gitea in the cluster")

    kits = {learner: json.loads((Path(path) / "kit.json").read_text()) for learner, path in created["kits"].items()}
    a, b = kits["learner-01"], kits["learner-02"]
    assert a["git_url"] == f"{forge}/{name}/learner-01.git"

    def url(kit: dict, repository: str) -> str:
        return f"http://{kit['git_username']}:{kit['git_password']}@{node_ip}:30081/{name}/{repository}.git"

    # Own repository: clone and push. The classmate's: read, and Gitea refuses the push.
    work = tmp_path / "a"
    run_git("clone", "-q", url(a, "learner-01"), str(work))
    run_git("-c", "user.name=A", "-c", "user.email=a@example.com", "commit", "-q", "--allow-empty", "-m", "A", cwd=work)
    run_git("push", "-q", "origin", "HEAD:main", cwd=work)
    assert run_git("ls-remote", url(a, "learner-02"), "main").stdout.strip()
    # a new branch: git itself would refuse a push to main that is not a fast-forward, before Gitea is asked
    refused = run_git("push", url(a, "learner-02"), "HEAD:refs/heads/from-learner-01", cwd=work, check=False)
    assert refused.returncode != 0 and DENIED in refused.stderr, refused.stderr
    refused = run_git("push", url(a, "learner-02-ml-platform-pipelines"), "HEAD:refs/heads/x", cwd=work, check=False)
    assert refused.returncode != 0 and DENIED in refused.stderr, refused.stderr

    # Learner 01's design pull request: not approvable by its author.
    run_git("checkout", "-q", "-b", "design", cwd=work)
    push_design(work, AGREEING, push=False)
    run_git("push", "-q", "origin", "design:design", cwd=work)
    as_a = GiteaAPI(forge, Account(a["git_username"], a["git_password"], ""))
    assert as_a.has_branch(name, "learner-01", "design", settle=PUSH_SETTLE_SECONDS)
    pull = as_a.open_pull_request(name, "learner-01", "design", "main", "Pipeline design document", "").number
    with pytest.raises(ForgeError) as own:
        as_a.review(name, "learner-01", pull, "APPROVED", "mine")
    assert own.value.status == 422

    # Peer review from the class's own forge: no --forge-url.
    assigned = bed.gitops_lab("class", "reviews", "assign", "--per-learner", "1", "--output", "json", name=name).json()
    done = {x["learner"]: x for x in assigned}
    assert done["learner-01"]["status"] == "assigned" and done["learner-01"]["reviewers"] == ["learner-02"]
    as_b = GiteaAPI(forge, Account(b["git_username"], b["git_password"], ""))
    as_b.review(name, "learner-01", pull, "APPROVED", "Scores: 2,2,2,2,2,2,2 (14/14)")
    rows = {r["learner"]: r for r in bed.gitops_lab("class", "status", "--output", "json", name=name).json()}
    assert rows["learner-01"]["reviews"]["received"] == "1/1 approved"
    assert rows["learner-02"]["reviews"]["given"] == "1/1"

    deleted = bed.gitops_lab("class", "delete", "--output", "json", name=name).json()
    assert len(deleted["backups"]) == 4  # each learner's lab and platform repository
    namespaces = {n.metadata.name for n in core.list_namespace().items}
    assert git_namespace not in namespaces and "gitops-lab-git" in namespaces  # the lab's Gitea stays

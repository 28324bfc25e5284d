"""A class on Gitea (`class create --git-server gitea`), provisioned through the API on a real Gitea (the
testbed's; skipped when not built): the same ``GiteaClassGitServer.provision`` that `class create` runs once
the class's Gitea is up in the cluster (that part runs on kind: tests/e2e/kind/test_kind_class_gitea_e2e.py).

Three learners (gc-ana, gc-ben, gc-cem) in the organisation gc-class. Accounts are prefixed ``gc-``: the Gitea is
shared by the session.
"""

from __future__ import annotations

import json
import stat

import pytest
from helpers.designdoc import AGREEING, push_design
from helpers.gitutil import git, run_git

from gitops_lab.adapters.forge.classserver import GiteaClassGitServer
from gitops_lab.adapters.forge.gitea import PUSH_SETTLE_SECONDS, Account, GiteaAPI
from gitops_lab.adapters.forge.seed import CREDENTIALS_FILE, gitea_cli_admin_creator
from gitops_lab.adapters.gitserver.base import ClassCredentials
from gitops_lab.adapters.gitserver.credentials import Credentials, new_password
from gitops_lab.classroom.record import ClassRecord, GitServerRecord, class_dir, learner_env_name
from gitops_lab.classroom.reviews import class_forge
from gitops_lab.classroom.tenant import learner_grants
from gitops_lab.errors import ForgeError
from gitops_lab.state import EnvironmentState


CLASS = "gc-class"
ANA, BEN, CEM = "gc-ana", "gc-ben", "gc-cem"
DENIED = "User permission denied for writing"  # Gitea's refusal of a push by a reader
SCORES = "Meets the rubric.\nScores: 2,2,2,2,2,2,2 (14/14)"


def _url(base: str, creds: Credentials, repository: str) -> str:
    host = base.removeprefix("http://")
    return f"http://{creds.username}:{creds.password}@{host}/{CLASS}/{repository}.git"


def test_a_class_on_gitea_isolates_learners_lets_classmates_read_and_review(testbed_gitea, lab, cli):
    wc, _ = lab
    url = testbed_gitea.url
    users = ClassCredentials(Credentials("gc-instructor", new_password()), Credentials("gc-engine", new_password()))
    learners = {name: Credentials(name, new_password()) for name in (ANA, BEN, CEM)}
    credentials = class_dir(CLASS) / CREDENTIALS_FILE
    server = GiteaClassGitServer(CLASS, credentials, url, create_admin=gitea_cli_admin_creator(testbed_gitea.cli()))

    def grants(names):
        return [grant for name in names for grant in learner_grants(name, learners[name])]

    changed = server.provision(grants((ANA, BEN, CEM)), users)
    assert "created organisation gc-class" in changed and f"gave {ANA} write access to gc-class/{ANA}" in changed
    assert server.provision(grants((ANA, BEN, CEM)), users) == []  # a re-run changes nothing
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert server.endpoints(ANA).host_url == f"{url}/{CLASS}/{ANA}.git"

    # Each learner pushes their own repositories, and Gitea refuses them another's.
    for name in (ANA, BEN):
        run_git("push", "-q", _url(url, learners[name], name), "main:main", cwd=wc)
    run_git("push", "-q", _url(url, learners[ANA], f"{ANA}-ml-platform-pipelines"), "main:main", cwd=wc)
    git(wc, "commit", "-q", "--allow-empty", "-m", "not yours")
    for repository in (BEN, f"{BEN}-ml-platform-pipelines"):
        refused = run_git("push", _url(url, learners[ANA], repository), "HEAD:main", cwd=wc, check=False)
        assert refused.returncode != 0 and DENIED in refused.stderr, refused.stderr
    # ... reads a classmate's; the engines read every repository and push none.
    assert run_git("ls-remote", _url(url, learners[ANA], BEN), "main").stdout.strip()
    assert run_git("ls-remote", _url(url, users.reader, ANA), "main").stdout.strip()
    refused = run_git("push", _url(url, users.reader, ANA), "HEAD:main", cwd=wc, check=False)
    assert refused.returncode != 0 and DENIED in refused.stderr
    git(wc, "reset", "-q", "--hard", "HEAD~1")

    # Ana's design pull request: she cannot approve it herself.
    account = {name: Account(name, c.password, f"{name}@x") for name, c in learners.items()}
    as_ana = GiteaAPI(url, account[ANA])
    git(wc, "checkout", "-q", "-b", "design")
    push_design(wc, AGREEING, push=False)
    run_git("push", "-q", _url(url, learners[ANA], ANA), "design:design", cwd=wc)
    assert as_ana.has_branch(CLASS, ANA, "design", settle=PUSH_SETTLE_SECONDS)
    pull = as_ana.open_pull_request(CLASS, ANA, "design", "main", "Pipeline design document", "").number
    with pytest.raises(ForgeError) as own:
        as_ana.review(CLASS, ANA, pull, "APPROVED", SCORES)
    assert own.value.status == 422

    # `class reviews assign` and `class report` find the class's own forge in its record: no --forge-url.
    record = GitServerRecord("gitea", base_url=server.url(), forge_url=url, forge_credentials=str(credentials))
    ClassRecord(CLASS, "flux", None, None, record, [ANA, BEN, CEM]).save()
    forge = class_forge(ClassRecord(CLASS, "flux", None, None, record, [ANA, BEN, CEM]))
    assert forge is not None and forge.lab_repository(ANA) == (CLASS, ANA)
    assigned = cli("--name", CLASS, "class", "reviews", "assign", "--per-learner", "1", "--output", "json")
    assert assigned.exit_code == 0, assigned.output
    done = {a["learner"]: a for a in json.loads(assigned.stdout)}
    assert done[ANA]["status"] == "assigned" and done[ANA]["pull_request"] == pull
    assert done[ANA]["granted"] == []  # classmates read each other's repositories already
    assert {done[BEN]["status"], done[CEM]["status"]} == {"not ready"}
    assert done[CEM]["reason"] == f"nothing pushed to {CLASS}/{CEM} yet"  # an empty repository, not a failure
    [reviewer] = done[ANA]["reviewers"]
    GiteaAPI(url, account[reviewer]).review(CLASS, ANA, pull, "APPROVED", SCORES)
    for name in (ANA, BEN, CEM):
        EnvironmentState(name=learner_env_name(CLASS, name), repo_path=str(wc), tenant=name).save()
    report = cli("--name", CLASS, "class", "report", "--learner", ANA, "--output", "json")
    assert report.exit_code == 0, report.output
    [evidence] = json.loads(report.stdout)["learners"]
    assert evidence["verdicts"]["peer-review"]["status"] == "passed", evidence["verdicts"]["peer-review"]

    # Cem leaves the class: he reads no classmate's repository and pushes none of his own any more.
    changed = server.provision(grants((ANA, BEN)), users)
    assert f"removed {CEM} from gc-class/classmates" in changed
    assert f"took {CEM}'s access to gc-class/{CEM} away" in changed
    cem = _url(url, learners[CEM], ANA)
    assert run_git("ls-remote", cem, "main", check=False).returncode != 0
    refused = run_git("push", _url(url, learners[CEM], CEM), "main:main", cwd=wc, check=False)
    assert refused.returncode != 0
    assert server.remove([CEM, f"{CEM}-ml-platform-pipelines", "gc-nobody"]) == [CEM, f"{CEM}-ml-platform-pipelines"]
    assert GiteaAPI(url, Account(users.writer.username, users.writer.password, "")).repository(CLASS, CEM) is None

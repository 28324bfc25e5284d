"""The pipeline-design lab's review step on a real Gitea (the testbed's, built from its pinned module; skipped when
it is not built): the check fails with no pull request, with one that does not change the document, and with one
whose document disagrees at its head; it passes once the branch is fixed, and `lab report` lists that pull
request. `lab test` runs the whole lab there, the review step included, and its reset closes the pull request.

The session's Gitea is shared by every test: the accounts here are this module's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.gitutil import git

from gitops_lab.adapters.forge.gitea import PUSH_SETTLE_SECONDS, GiteaAPI
from gitops_lab.adapters.forge.seed import LabRepository, load_or_create_accounts
from gitops_lab.assessment.design_doc import DOC_PATH

LEARNER, REVIEWER = "desa", "dirk"
LAB = "pipeline-design"


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("designlab") / "forge-credentials.json"
    load_or_create_accounts(path, learner=LEARNER, reviewers=(REVIEWER,), admin="designlab-admin", engine="designlab-e")
    return path


def _forge_lab(gitea, cli, tmp_path: Path, creds: Path, repo: str) -> tuple[Path, GiteaAPI]:
    """A lab repository `repo` on Gitea, seeded by `repo init --forge-url` (the lab's state keeps the forge)."""
    accounts = load_or_create_accounts(creds, learner=LEARNER, reviewers=(REVIEWER,))
    gitea.seed_lab(accounts, LabRepository(repo))
    wc = tmp_path / "wc"
    remote = f"{gitea.url}/{LEARNER}/{repo}.git"
    init = cli("repo", "init", str(wc), "--remote", remote, "--forge-url", gitea.url, "--forge-credentials", str(creds))
    assert init.exit_code == 0, init.output
    return wc, GiteaAPI(gitea.url, accounts.learner)


def _push_branch(wc: Path, api: GiteaAPI, repo: str, branch: str, path: str, old: str, new: str) -> int:
    """What a learner does: a branch from main with one file changed, pushed, and its pull request into main
    opened as the learner; the pull request's number."""
    git(wc, "switch", "-q", "-c", branch, "main")
    target = wc / path
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    git(wc, "commit", "-qam", f"{branch}: change {path}")
    git(wc, "push", "-q", _as_learner(api, repo), f"HEAD:{branch}")
    git(wc, "switch", "-q", "main")
    assert api.has_branch(LEARNER, repo, branch, settle=PUSH_SETTLE_SECONDS)  # Gitea records pushes from a queue
    return api.open_pull_request(LEARNER, repo, branch, "main", f"{branch}", "Please review.").number


def _as_learner(api: GiteaAPI, repo: str) -> str:
    """The repository's URL with the learner's password: a plain `git push` as the learner makes it."""
    host = api.base_url.removeprefix("http://")
    return f"http://{LEARNER}:{api.account.password}@{host}/{LEARNER}/{repo}.git"


def _check(cli):
    result = cli("lab", "check")
    return result.exit_code, result.output


def test_the_review_step_fails_until_a_pull_request_changes_an_agreeing_document(testbed_gitea, cli, tmp_path, creds):
    wc, api = _forge_lab(testbed_gitea, cli, tmp_path, creds, "design")
    where = f"{testbed_gitea.url}/{LEARNER}/design"
    assert cli("lab", "start", LAB).exit_code == 0
    solved = cli("lab", "solve", "keep-it-true")
    assert solved.exit_code == 0, solved.output

    code, said = _check(cli)
    assert code != 0
    assert f"no open pull request into main on {where} changes {DOC_PATH}" in said
    assert "`git push origin HEAD:design-review`" in said

    notes = _push_branch(
        wc, api, "design", "notes", "overlays/dev/kustomization.yaml", "\n", "\n# dev, as the team runs it\n"
    )
    code, said = _check(cli)
    assert code != 0
    assert f"no pull request into main changes {DOC_PATH}: the open #{notes} (branch notes) does not" in said

    wrong = _push_branch(wc, api, "design", "design-wrong", DOC_PATH, "max_psi: 0.2", "max_psi: 0.3")
    code, said = _check(cli)
    assert code != 0
    head = git(wc, "rev-parse", "origin/design-wrong")  # fetched by the check
    assert f"{DOC_PATH} at the head of pull request #{wrong} (design-wrong, {head[:7]}) has 1 problem" in said
    assert "max_psi" in said and "0.3" in said
    assert "fix it on design-wrong and push, and the pull request follows" in said

    # the learner fixes the threshold on the same branch, and marks the document in review (a fix alone would
    # leave the branch's document as main's: a pull request that no longer changes it); the pull request follows
    git(wc, "switch", "-q", "design-wrong")
    doc = wc / DOC_PATH
    title, _, rest = doc.read_text(encoding="utf-8").replace("max_psi: 0.3", "max_psi: 0.2").partition("\n")
    doc.write_text(f"{title}\n\nStatus: in review.\n{rest}", encoding="utf-8")
    git(wc, "commit", "-qam", "Design document: max_psi as gates.yaml says; in review")
    git(wc, "push", "-q", _as_learner(api, "design"), "HEAD:design-wrong")
    git(wc, "switch", "-q", "main")
    code, said = _check(cli)
    assert code == 0, said
    assert f"pull request #{wrong} (open, {where}/pulls/{wrong}) changes {DOC_PATH}" in said

    # the pull request the step asked for is the one `lab report` reads for the peer review
    args = ["--forge-url", testbed_gitea.url, "--forge-credentials", str(creds), "--forge-repo", f"{LEARNER}/design"]
    report = cli("lab", "report", "--repo", str(wc), *args, "--output", "json")
    assert report.exit_code == 0, report.output
    [evidence] = json.loads(report.stdout)["learners"]
    assert [pr["number"] for pr in evidence["pull_requests"]] == [wrong]


def test_lab_test_opens_the_design_pull_request_and_its_reset_closes_it(testbed_gitea, cli, tmp_path, creds):
    wc, api = _forge_lab(testbed_gitea, cli, tmp_path, creds, "designtest")
    result = cli("lab", "test", LAB, "--output", "json")
    assert result.exit_code == 0, result.output
    [tested] = json.loads(result.stdout)["labs"]
    assert [(case["step"], case["status"]) for case in tested["steps"]] == [
        ("write-the-design", "passed"),
        ("keep-it-true", "passed"),
        ("open-for-review", "passed"),
        ("reset", "passed"),
    ]
    # the solution opened it as the learner, from a branch, changing the document only; main never moved to it
    [pr] = api.pull_requests(LEARNER, "designtest", state="closed", with_reviews=False)
    # (its branch deleted, Gitea names its head by the pull request's own ref)
    assert (pr.title, pr.base, pr.author, pr.merged) == ("Pipeline design document, for review", "main", LEARNER, False)
    assert api.pull_request_files(LEARNER, "designtest", pr.number) == [DOC_PATH]
    assert api.pull_requests(LEARNER, "designtest", state="open") == []
    assert not api.has_branch(LEARNER, "designtest", "design-review")  # the reset deleted it
    assert "Status: in review" not in git(wc, "show", f"origin/main:{DOC_PATH}")

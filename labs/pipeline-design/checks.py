"""Checks of the pipeline-design lab: the design document, as pushed, against the repository, as pushed;
then the design's pull request on the lab's forge, for peer review.

The check is gitops-lab's own (`gitops-lab design check`, gitops_lab.assessment):
it parses the document's sections and yaml blocks and compares them with
gates.yaml and the pipeline templates of the same commit. "The design pull
request" is what `class reviews assign` and `lab report` read
(assessment/evidence.py's ``design_pull_requests``): one that changes the
document; here, an open or merged one into main.
"""

from __future__ import annotations

from gitops_lab.adapters.forge.gitea import PUSH_SETTLE_SECONDS, PullRequest
from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo.layout import BRANCH
from gitops_lab.adapters.repo.pushed import fetch_branch
from gitops_lab.assessment.design_doc import DOC_PATH, check_design
from gitops_lab.assessment.evidence import ForgeRepository
from gitops_lab.assessment.repo_files import CommitFiles
from gitops_lab.errors import GitOpsLabError, UsageError
from gitops_lab.resources import environments_source
from gitops_lab.textfiles import read_exact, write_exact
from gitops_lab.workflows.pull_request import NO_FORGE_FIX, LabForge

#: The branch the solution pushes the design's revision to (a learner may name theirs as they like).
DESIGN_BRANCH = "design-review"
PR_TITLE = "Pipeline design document, for review"
PR_BODY = (
    "Please review the whole of docs/pipeline-design.md (View File shows it), not only the diff, against the "
    "design review rubric, and end your review with its score line.\n\n"
    "`gitops-lab design check` agrees with the repository at this branch's head."
)
STATUS_LINE = "Status: in review (see the pull request that changed this line)."

SHOWN = 4  # problems shown under a failed check; `design check` lists them all


def seed_template(ctx) -> None:
    """Commit the template when the repository has no design document (one seeded by an older gitops-lab)."""
    if ctx.show(DOC_PATH) is not None:
        return
    from gitops_lab.labs.actions import do_commit_file

    template = (environments_source() / DOC_PATH).read_text(encoding="utf-8")
    do_commit_file(ctx, {"path": DOC_PATH, "content": template, "message": "Add the pipeline design template"})


def design_agrees(ctx):
    """The pushed design document is finished and agrees with the pushed gates.yaml and pipeline templates."""
    return _agrees_at(ctx, ctx.pushed(), "as pushed")


def _agrees_at(ctx, ref: str, where: str, fix: str = "") -> tuple[bool, str]:
    """`design check` at ``ref``: the document there against gates.yaml and the pipeline templates there."""
    try:
        report = check_design(CommitFiles(ctx.git, ref))
    except GitOpsLabError as error:  # no document, or a gates.yaml that does not load
        return False, error.one_line()
    if report.passed:
        return True, (
            f"{DOC_PATH} {where} agrees with the repository: {len(report.stages)} stages, "
            f"{len(report.gates)} gates, promotion and rollback criteria"
        )
    shown = "; ".join(str(p) for p in report.problems[:SHOWN])
    more = len(report.problems) - SHOWN
    return False, (
        f"{DOC_PATH} {where} has {len(report.problems)} problem{'s' if len(report.problems) != 1 else ''}: {shown}"
        + (f"; and {more} more (`gitops-lab design check` lists them all)" if more > 0 else "")
        + fix
    )


def _forge(ctx) -> LabForge:
    forge = ctx.forge()
    if forge is None:
        raise UsageError("this lab has no forge (Gitea) to open the design's pull request on", fix=NO_FORGE_FIX)
    return forge


def _design_pull_requests(forge: LabForge) -> list[PullRequest]:
    """The design pull requests into main that count: open or merged (newest first)."""
    found = ForgeRepository(forge.learner, forge.owner, forge.name).design_pull_requests(DOC_PATH)
    return [pr for pr in found if pr.base == BRANCH and (pr.state == "open" or pr.merged)]


def _head(ctx, pr: PullRequest) -> str | None:
    """The commit to check for ``pr``: its merge once merged (on main), else its branch's tip as the forge has it."""
    if pr.merged and pr.merge_sha:
        ctx.pushed(refresh=True)
        if ctx.git.ok("cat-file", "-e", f"{pr.merge_sha}^{{commit}}"):
            return pr.merge_sha
    return fetch_branch(ctx.git, pr.head)


def design_pull_request(ctx):
    """An open (or merged) pull request into main on the lab's forge changes the design document, and the
    document agrees with the repository at the pull request's head."""
    forge = ctx.forge()
    if forge is None:
        return (
            False,
            f"this lab has no forge (Gitea) for pull requests, so nobody can review the design: {NO_FORGE_FIX}",
        )
    where = f"{forge.url}/{forge.owner}/{forge.name}"
    found = _design_pull_requests(forge)
    if not found:
        others = [
            pr
            for pr in forge.learner.pull_requests(forge.owner, forge.name, state="open", with_reviews=False)
            if pr.base == BRANCH
        ]
        if others:
            named = ", ".join(f"#{pr.number} (branch {pr.head})" for pr in others[:3])
            return False, (
                f"no pull request into {BRANCH} changes {DOC_PATH}: the open {named} "
                f"{'does' if len(others) == 1 else 'do'} not; commit your revision of {DOC_PATH} on that branch "
                "and push it, and the pull request shows it"
            )
        return False, (
            f"no open pull request into {BRANCH} on {where} changes {DOC_PATH}: commit your revision on a branch, "
            f"`git push origin HEAD:{DESIGN_BRANCH}`, and open one at {where}/compare/{BRANCH}...{DESIGN_BRANCH}"
        )
    pr = found[0]
    head = _head(ctx, pr)
    if head is None:
        return False, f"the branch {pr.head} of pull request #{pr.number} is not on {where}: push it again"
    sha = ctx.git.out("rev-parse", head)
    state = "merged" if pr.merged else "open"
    ok, said = _agrees_at(
        ctx,
        head,
        f"at the head of pull request #{pr.number} ({pr.head}, {sha[:7]})",
        fix=f"; fix it on {pr.head} and push, and the pull request follows",
    )
    if not ok:
        return False, said
    return True, f"pull request #{pr.number} ({state}, {pr.url}) changes {DOC_PATH}; {said}"


def open_design_pull_request(ctx, branch: str = DESIGN_BRANCH) -> None:
    """What the learner does: a revision of the document pushed to ``branch`` (main does not move), and the
    pull request into main opened on the forge as the learner. A re-run finds the branch and the pull request."""
    forge = _forge(ctx)
    api = forge.learner
    if api.open_pull_request_of(forge.owner, forge.name, branch, BRANCH) is not None:
        return
    if fetch_branch(ctx.git, branch) is None:
        _push_revision(ctx, branch)
        api.has_branch(forge.owner, forge.name, branch, settle=PUSH_SETTLE_SECONDS)  # Gitea records it from a queue
    api.open_pull_request(forge.owner, forge.name, branch, BRANCH, PR_TITLE, PR_BODY)


def _push_revision(ctx, branch: str) -> None:
    git = ctx.git
    publish.check_clean(git)
    publish.catch_up(git)
    path = ctx.repo / DOC_PATH
    title, _, rest = read_exact(path).partition("\n")
    with publish.published_or_undone(git, f"the design's revision on {branch}"):
        write_exact(path, f"{title}\n\n{STATUS_LINE}\n{rest}")
        publish.commit(git, [DOC_PATH], "Design document: in review\n")
        publish.push(git, branch=branch)
        git.run("reset", "--quiet", "--keep", "HEAD~1")  # on its branch; main reaches it only by the merge


def close_design_pull_requests(ctx) -> None:
    """Back to the start point: the open design pull requests closed and their branches deleted (the closed
    pull requests keep their commits and reviews on the forge). Nothing without a forge."""
    forge = ctx.forge()
    if forge is None:
        return
    for pr in _design_pull_requests(forge):
        if pr.state == "open":
            ctx.reporter.info(f"Closing pull request #{pr.number} ({pr.head}) on {forge.url}")
            forge.learner.close_pull_request(forge.owner, forge.name, pr.number)
            forge.learner.delete_branch(forge.owner, forge.name, pr.head)


def setting(ctx, section: str, key: str, value):
    """gates.yaml as pushed sets ``section.key`` to ``value`` (the team's decision the document must follow)."""
    from gitops_lab.gates.config import CONFIG_FILE, config_from_text

    try:
        config = config_from_text(ctx.show(CONFIG_FILE), CONFIG_FILE)
    except GitOpsLabError as error:
        return False, error.one_line()
    found = config.verification if section == "verification" else config.settings.get(section, {})
    actual = found.get(key)
    if actual == value:
        return True, f"{CONFIG_FILE} keeps {section}.{key}: {value}"
    return False, (
        f"{CONFIG_FILE} sets {section}.{key} to {actual}, but the team decided {value}: keep gates.yaml as it is "
        "and change the document instead"
    )

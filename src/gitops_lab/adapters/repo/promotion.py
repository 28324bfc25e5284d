"""Promotion and rollback as Git changes.

``promote`` sets one environment's model version in one commit; ``rollback``
undoes the environment's last change of version still in effect (a promotion,
a deploy or a hand edit, read from the overlay's history), or moves it to a
version it ran before.
Both refuse bad input before touching anything, and both push.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.history import HistoryEntry, history, versions_in_effect
from gitops_lab.adapters.repo.layout import BRANCH, VERSION_LABEL, RepoLayout, overlay_path
from gitops_lab.adapters.repo.pushed import version_at
from gitops_lab.errors import RepoStateError, UsageError


@dataclass
class ChangeResult:
    """What a promotion or rollback did. ``commit`` is None for a no-op."""

    action: str
    environment: str
    version: str
    previous: str
    commit: str | None
    pushed: bool
    message: str
    trailers: dict[str, str] = field(default_factory=dict)
    #: On a forge, the promotion's pull request (number, url, head, merged, approvers, reviewers).
    pull_request: dict | None = None

    @property
    def changed(self) -> bool:
        return self.commit is not None

    def to_dict(self) -> dict:
        data = {**asdict(self), "changed": self.changed}
        if self.pull_request is None:
            del data["pull_request"]
        return data


Progress = Callable[[int, str], None]


def check_promotion(git: Git, layout: RepoLayout, src: str, dst: str, version: str | None) -> None:
    """Refuse a promotion that cannot be, before anything is touched."""
    publish.check_clean(git)
    layout.check_env(src)
    layout.check_env(dst)
    if src == dst and version is None:
        # The first environment has nothing before it: its version is set directly, with --version.
        raise UsageError(
            f"cannot promote {src} to itself",
            fix=f"set its version with `gitops-lab promote --to {dst} --version V`, or choose another --to",
        )
    if version is not None:
        layout.check_version(version)


def promote(
    path: str | Path,
    src: str,
    dst: str,
    version: str | None = None,
    extra_trailers: list[tuple[str, str]] | None = None,
    on_retry: Progress | None = None,
) -> ChangeResult:
    """Set ``dst``'s model version to ``src``'s (or to ``version``), in one pushed commit."""
    git, layout = Git(path), RepoLayout(path)
    check_promotion(git, layout, src, dst, version)
    recovered = publish.catch_up(git)
    target = layout.check_version(version or layout.model_version(src))
    return noted(commit_promotion(git, layout, src, dst, target, extra_trailers, on_retry), recovered)


def noted(result: ChangeResult, recovered: publish.Recovered | None) -> ChangeResult:
    """``result`` with what ``catch_up`` found of a stopped earlier run said first."""
    if recovered is not None:
        result.message = f"{recovered.note}; {result.message}"
    return result


def already_done(git: Git, recovered: publish.Recovered | None, action: str, env: str) -> ChangeResult | None:
    """The stopped earlier run's change, when the remote took it after all and it was this ``action`` on ``env``.

    A re-run after a push whose outcome was unknown must not do the change a
    second time (a plain rollback would roll back once more).
    """
    if recovered is None or recovered.landed is None:
        return None
    trailers = recovered.trailers(git)
    if (trailers.get(t.ACTION), trailers.get(t.ENVIRONMENT)) != (action, env):
        return None
    version, previous = trailers.get(t.MODEL_VERSION, ""), trailers.get(t.PREVIOUS_VERSION, "")
    return ChangeResult(
        action,
        env,
        version,
        previous,
        None,
        False,
        f"already done: {recovered.note} ({env} {previous} -> {version}); nothing to do",
        trailers,
    )


def _in_effect_since(path: str | Path, env: str, version: str) -> str:
    """ " since abc1234 (Promote v2 to staging, by Pat)": the change that set ``env`` to ``version``, if found."""
    in_effect = versions_in_effect(history(path, env))
    last: HistoryEntry | None = in_effect[-1] if in_effect else None
    if last is None or last.version != version:
        return ""
    return f" since {last.commit[:7]} ({last.subject}, by {last.author})"


def commit_promotion(
    git: Git,
    layout: RepoLayout,
    src: str,
    dst: str,
    target: str,
    extra_trailers: list[tuple[str, str]] | None = None,
    on_retry: Progress | None = None,
    branch: str = BRANCH,
) -> ChangeResult:
    """Set ``dst``'s model version to ``target`` in one pushed commit.

    For a promotion already checked (``check_promotion``, an existing ``target``)
    and caught up with the remote: ``promote`` does both first, a gated promotion
    does them once before its gates run. With another ``branch`` (a pull
    request's), the commit is pushed there and the local main stays as it was.
    """
    current = layout.model_version(dst)
    if current == target:
        since = _in_effect_since(layout.root, dst, target)
        return ChangeResult(
            "promote", dst, target, current, None, False, f"{dst} already runs {target}{since}; nothing to do"
        )

    # --version with --to the first environment (or --from equal to --to): a version set, from no environment.
    direct = src == dst
    trailers = [
        (t.ACTION, "promote"),
        (t.ENVIRONMENT, dst),
        *([] if direct else [(t.PROMOTED_FROM, src)]),
        (t.MODEL_VERSION, target),
        (t.PREVIOUS_VERSION, current),
        *(extra_trailers or []),
    ]
    return _set_version(
        git,
        layout,
        "promote",
        dst,
        target,
        current,
        trailers,
        f"Set {dst} to {target}" if direct else f"Promote {target} to {dst}",
        f"set {dst} to {target} (was {current})"
        if direct
        else f"promoted {target} from {src} to {dst} (was {current})",
        on_retry,
        branch=branch,
    )


def rollback(
    path: str | Path,
    env: str,
    to: str | None = None,
    on_retry: Progress | None = None,
    branch_of: Callable[[str], str] | None = None,
) -> ChangeResult:
    """Undo ``env``'s last change of version still in effect (a revert of its version line), or move it to ``to``.

    With ``branch_of``, the commit goes to the branch it names for the version gone back to (a rollback's pull
    request), not to main.
    """
    git, layout = Git(path), RepoLayout(path)
    publish.check_clean(git)
    layout.check_env(env)
    if to is not None:
        layout.check_version(to)
    recovered = publish.catch_up(git)
    done = already_done(git, recovered, "rollback", env)
    if done is not None and (to is None or done.version == to):
        return done
    current = layout.model_version(env)
    if to is not None:
        return noted(_roll_to(git, layout, env, current, to, on_retry, branch_of), recovered)

    entries = history(path, env)
    in_effect = versions_in_effect(entries)
    if len(in_effect) < 2:
        since = f" since {in_effect[0].commit[:7]} ({in_effect[0].subject})" if in_effect else ""
        newest = next((e for e in entries if e.changed), None)
        if newest and in_effect and newest.commit != in_effect[-1].commit:
            since += f"; its last change, {newest.commit[:7]} ({newest.subject}), already went back to {newest.version}"
        raise UsageError(
            f"{env} has no promotion to roll back: no change of its version is in effect{since}",
            fix=f"see `gitops-lab history --env {env}`, or name a version with --to",
        )
    last, before = in_effect[-1], in_effect[-2]
    if last.version != current:
        raise RepoStateError(
            f"{env} runs {current}, not {last.version} as its last change ({last.commit[:7]}) set",
            fix="name the version to go back to with --to",
        )
    trailers = [
        (t.ACTION, "rollback"),
        (t.ENVIRONMENT, env),
        (t.MODEL_VERSION, before.version),
        (t.PREVIOUS_VERSION, current),
        (t.REVERTS, last.commit),
    ]
    # Only the version line goes back: a hand edit that changed more keeps its other changes.
    body = f'This reverts the change of {env}\'s model version in commit {last.commit}, "{last.subject}".'
    return noted(
        _set_version(
            git,
            layout,
            "rollback",
            env,
            before.version,
            current,
            trailers,
            f"Roll back {env} to {before.version}",
            f"rolled {env} back from {current} to {before.version} (reverted {last.commit[:7]})",
            on_retry,
            body=body,
            branch=branch_of(before.version) if branch_of else BRANCH,
        ),
        recovered,
    )


def revert(
    path: str | Path,
    env: str,
    commit: str,
    subject: str,
    extra_trailers: list[tuple[str, str]] | None = None,
    body: str = "",
    on_retry: Progress | None = None,
) -> ChangeResult:
    """Take ``env`` back to the version it ran before ``commit`` (which changed it), in one pushed commit.

    A ``git revert`` of ``commit`` when it reverts cleanly, else a commit that sets
    the version line back. ``extra_trailers`` carry why (the automated release's
    reason and evidence).
    """
    git, layout = Git(path), RepoLayout(path)
    publish.check_clean(git)
    layout.check_env(env)
    recovered = publish.catch_up(git)
    done = already_done(git, recovered, "rollback", env)
    if done is not None:
        return done
    current = layout.model_version(env)
    previous = version_at(git, f"{commit}^", env)
    if previous == current:
        return ChangeResult(
            "rollback", env, previous, current, None, False, f"{env} already runs {previous}; nothing to do"
        )
    trailers = [
        (t.ACTION, "rollback"),
        (t.ENVIRONMENT, env),
        (t.MODEL_VERSION, previous),
        (t.PREVIOUS_VERSION, current),
    ]
    message = f"rolled {env} back from {current} to {previous}"
    reverted = _revert(
        git,
        layout,
        env,
        current,
        commit,
        previous,
        [*trailers, (t.REVERTS, commit), *(extra_trailers or [])],
        subject,
        "\n\n".join(p for p in (f"This reverts commit {commit}.", body) if p),
        f"{message} (reverted {commit[:7]})",
        on_retry,
    )
    if reverted is not None:
        return reverted
    return _set_version(
        git,
        layout,
        "rollback",
        env,
        previous,
        current,
        [*trailers, *(extra_trailers or [])],
        subject,
        message,
        on_retry,
    )


def _revert(
    git: Git,
    layout: RepoLayout,
    env: str,
    current: str,
    commit: str,
    previous: str,
    trailers: list[tuple[str, str]],
    subject: str,
    body: str,
    message: str,
    on_retry: Progress | None,
) -> ChangeResult | None:
    """``git revert`` ``commit`` as one commit with ``trailers``, and push it (or undo it); None when it does not
    revert cleanly (then nothing was changed)."""
    try:
        with publish.published_or_undone(git, f"the rollback of {env} to {previous}"):
            reverted_run = git.run("revert", "--no-commit", commit, check=False)
            if reverted_run.returncode != 0 or layout.model_version(env) != previous:
                git.run("revert", "--abort", check=False)
                git.run("reset", "--quiet", "--hard", "HEAD", check=False)
                return None
            git.run("commit", "--quiet", "--file", "-", input=t.compose(subject, trailers, body=body))
            pushed = publish.push(git, on_retry)
    except publish.AlreadyOnRemote as first:
        return _done_by_another(git, "rollback", env, previous, current, first.commit)
    return ChangeResult("rollback", env, previous, current, git.head(), pushed, message, dict(trailers))


def _roll_to(
    git: Git,
    layout: RepoLayout,
    env: str,
    current: str,
    to: str,
    on_retry: Progress | None,
    branch_of: Callable[[str], str] | None = None,
) -> ChangeResult:
    if current == to:
        return ChangeResult("rollback", env, to, current, None, False, f"{env} already runs {to}; nothing to do")
    line = f"{VERSION_LABEL}: {to}"
    ran_before = git.out("log", "--format=%H", "-S", line, "--", overlay_path(env))
    if not ran_before:
        raise UsageError(
            f"{env} never ran {to}, so there is nothing to roll back to",
            fix=f"promote it instead: `gitops-lab promote --to {env} --version {to}`",
        )
    trailers = [
        (t.ACTION, "rollback"),
        (t.ENVIRONMENT, env),
        (t.MODEL_VERSION, to),
        (t.PREVIOUS_VERSION, current),
    ]
    return _set_version(
        git,
        layout,
        "rollback",
        env,
        to,
        current,
        trailers,
        f"Roll back {env} to {to}",
        f"rolled {env} back from {current} to {to}",
        on_retry,
        branch=branch_of(to) if branch_of else BRANCH,
    )


def _set_version(
    git: Git,
    layout: RepoLayout,
    action: str,
    env: str,
    version: str,
    current: str,
    trailers: list[tuple[str, str]],
    subject: str,
    message: str,
    on_retry: Progress | None,
    body: str = "",
    branch: str = BRANCH,
) -> ChangeResult:
    """Change env's one version line in one commit with ``trailers``, and push it to ``branch`` (or undo it)."""
    noun = "promotion" if action == "promote" else action
    try:
        with publish.published_or_undone(git, f"the {noun} of {env} to {version}"):
            layout.set_model_version(env, version)
            sha = publish.commit(git, [overlay_path(env)], t.compose(subject, trailers, body=body))
            pushed = publish.push(git, on_retry, branch)
            if branch != BRANCH:
                # Published on its pull request's branch; main reaches it only by the merge.
                git.run("reset", "--quiet", "--keep", "HEAD~1")
                return ChangeResult(action, env, version, current, sha, pushed, message, dict(trailers))
    except publish.AlreadyOnRemote as first:
        return _done_by_another(git, action, env, version, current, first.commit)
    return ChangeResult(action, env, version, current, git.head() if pushed else sha, pushed, message, dict(trailers))


def _done_by_another(git: Git, action: str, env: str, version: str, current: str, remote_head: str) -> ChangeResult:
    """Another copy made the same change while this one ran (its push won): say so, with its commit and author."""
    since = _in_effect_since(git.path, env, version)
    by = since or f" at {git.out('log', '-1', '--format=%h (%s, by %an)', remote_head)}"
    return ChangeResult(
        action,
        env,
        version,
        current,
        None,
        False,
        f"already done: another copy set {env} to {version} first{by}; nothing to do",
    )

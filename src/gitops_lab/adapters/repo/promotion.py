"""Promotion and rollback as Git changes.

``promote`` sets one environment's model version in one commit; ``rollback``
reverts the environment's last promotion, or moves it to a version it ran before.
Both refuse bad input before touching anything, and both push.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gitops_lab.adapters.repo import publish
from gitops_lab.adapters.repo import trailers as t
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.history import history
from gitops_lab.adapters.repo.layout import VERSION_LABEL, RepoLayout, overlay_path
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

    @property
    def changed(self) -> bool:
        return self.commit is not None

    def to_dict(self) -> dict:
        return {**asdict(self), "changed": self.changed}


Progress = Callable[[int, str], None]


def check_promotion(git: Git, layout: RepoLayout, src: str, dst: str, version: str | None) -> None:
    """Refuse a promotion that cannot be, before anything is touched."""
    publish.check_clean(git)
    layout.check_env(src)
    layout.check_env(dst)
    if src == dst:
        raise UsageError(f"cannot promote {src} to itself", fix="choose a different --to environment")
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
    publish.catch_up(git)
    target = version or layout.model_version(src)
    layout.check_version(target)
    current = layout.model_version(dst)
    if current == target:
        return ChangeResult("promote", dst, target, current, None, False, f"{dst} already runs {target}; nothing to do")

    trailers = [
        (t.ACTION, "promote"),
        (t.ENVIRONMENT, dst),
        (t.PROMOTED_FROM, src),
        (t.MODEL_VERSION, target),
        (t.PREVIOUS_VERSION, current),
        *(extra_trailers or []),
    ]
    return _set_version(git, layout, "promote", dst, target, current, trailers, f"Promote {target} to {dst}",
                        f"promoted {target} from {src} to {dst} (was {current})", on_retry)


def rollback(
    path: str | Path,
    env: str,
    to: str | None = None,
    on_retry: Progress | None = None,
) -> ChangeResult:
    """Undo ``env``'s last promotion with a revert commit, or move it to ``to``."""
    git, layout = Git(path), RepoLayout(path)
    publish.check_clean(git)
    layout.check_env(env)
    if to is not None:
        layout.check_version(to)
    publish.catch_up(git)
    current = layout.model_version(env)
    if to is not None:
        return _roll_to(git, layout, env, current, to, on_retry)

    entries = history(path, env)
    reverted = {e.reverts for e in entries if e.reverts}
    last = next((e for e in entries if e.action == "promote" and e.commit not in reverted), None)
    if last is None:
        raise UsageError(
            f"{env} has no promotion to roll back",
            fix=f"see `gitops-lab history --env {env}`, or name a version with --to",
        )
    if last.version != current or not last.previous:
        raise RepoStateError(
            f"{env} runs {current}, not {last.version} as its last promotion ({last.commit[:7]}) set",
            fix="name the version to go back to with --to",
        )
    trailers = [
        (t.ACTION, "rollback"),
        (t.ENVIRONMENT, env),
        (t.MODEL_VERSION, last.previous),
        (t.PREVIOUS_VERSION, current),
        (t.REVERTS, last.commit),
    ]
    with publish.published_or_undone(git, f"the rollback of {env} to {last.previous}"):
        reverted_run = git.run("revert", "--no-commit", last.commit, check=False)
        if reverted_run.returncode != 0 or layout.model_version(env) != last.previous:
            raise RepoStateError(
                f"the last promotion of {env} ({last.commit[:7]}) cannot be reverted cleanly",
                fix="name the version to go back to with --to",
            )
        message = t.compose(
            f"Roll back {env} to {last.previous}",
            trailers,
            body=f'This reverts commit {last.commit}, "{last.subject}".',
        )
        git.run("commit", "--quiet", "--file", "-", input=message)
        pushed = publish.push(git, on_retry)
    return ChangeResult(
        "rollback", env, last.previous, current, git.head(), pushed,
        f"rolled {env} back from {current} to {last.previous} (reverted {last.commit[:7]})", dict(trailers),
    )


def _roll_to(git: Git, layout: RepoLayout, env: str, current: str, to: str, on_retry: Progress | None) -> ChangeResult:
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
    return _set_version(git, layout, "rollback", env, to, current, trailers, f"Roll back {env} to {to}",
                        f"rolled {env} back from {current} to {to}", on_retry)


def _set_version(git: Git, layout: RepoLayout, action: str, env: str, version: str, current: str,
                 trailers: list[tuple[str, str]], subject: str, message: str,
                 on_retry: Progress | None) -> ChangeResult:
    """Change env's one version line in one commit with ``trailers``, and push it (or undo it)."""
    noun = "promotion" if action == "promote" else action
    with publish.published_or_undone(git, f"the {noun} of {env} to {version}"):
        layout.set_model_version(env, version)
        sha = publish.commit(git, [overlay_path(env)], t.compose(subject, trailers))
        pushed = publish.push(git, on_retry)
    return ChangeResult(action, env, version, current, git.head() if pushed else sha, pushed, message, dict(trailers))

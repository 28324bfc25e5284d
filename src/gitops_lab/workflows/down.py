"""`down`: back up the lab repository, delete the cluster, remove the local state.

The backup is a git bundle of every ref in the working copy (learner commits
and backup refs included) plus, when the working copy has uncommitted changes
(untracked files too), a commit of them under refs/gitops-lab/backup/, made
without touching the working tree. It is written into the state folder,
which keeps only its backups/ afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gitops_lab.adapters.cluster import PROVIDERS, provider_for
from gitops_lab.adapters.cluster.kind_binary import installed_kind
from gitops_lab.adapters.cluster.kind_config import KindSettings
from gitops_lab.adapters.cluster.kind_provider import KindCluster
from gitops_lab.adapters.repo.git import Git
from gitops_lab.adapters.repo.publish import snapshot_uncommitted
from gitops_lab.errors import UsageError
from gitops_lab.reporter import Reporter
from gitops_lab.state import EnvironmentState, environment_dir

BACKUPS = "backups"


@dataclass
class DownResult:
    name: str
    backup: str | None = None
    cluster_deleted: bool = False
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "backup": self.backup,
            "cluster_deleted": self.cluster_deleted,
            "removed": self.removed,
            "notes": self.notes,
        }


def backup_repository(repo: Path, backups: Path) -> Path | None:
    """Bundle every ref of ``repo`` (and its uncommitted work) into ``backups``."""
    git = Git(repo)
    if not git.is_repo():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S")
    snapshot_uncommitted(git, "uncommitted-at-down")
    backups.mkdir(parents=True, exist_ok=True)
    bundle = _new_file(backups, f"repo-{stamp}", ".bundle")
    git.run("bundle", "create", "--quiet", str(bundle), "--all")
    return bundle


def bundle_remote(url: str, backups: Path, stem: str) -> Path | None:
    """Bundle every ref of the repository at ``url`` (one with no clone here) into ``backups``, as
    ``<stem>-<time>.bundle``; None when there is no repository at ``url`` or it has no refs."""
    heads = Git(".").run("ls-remote", url, check=False)
    if heads.returncode != 0 or not heads.stdout.strip():
        return None
    with tempfile.TemporaryDirectory(prefix="gitops-lab-bundle-") as tmp:
        mirror = Path(tmp) / "mirror.git"
        Git(tmp).run("clone", "--quiet", "--mirror", url, str(mirror))
        backups.mkdir(parents=True, exist_ok=True)
        bundle = _new_file(backups, f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}", ".bundle")
        Git(mirror).run("bundle", "create", "--quiet", str(bundle), "--all")
    return bundle


def _new_file(folder: Path, stem: str, suffix: str) -> Path:
    """A file name in ``folder`` that no earlier backup holds, claimed at once: two `down`s in one second (or
    at once) each keep their own bundle."""
    for n in range(1, 1000):
        candidate = folder / f"{stem}{'' if n == 1 else f'-{n}'}{suffix}"
        try:
            candidate.open("x").close()
        except FileExistsError:
            continue
        return candidate
    raise UsageError(f"{folder} holds too many backups named {stem}*", fix=f"move old backups out of {folder}")


def down(state: EnvironmentState | None, name: str, reporter: Reporter, state_problem: str | None = None) -> DownResult:
    """``state`` None: nothing was saved (or ``state_problem`` says why it cannot be read)."""
    result = DownResult(name=name)
    home = environment_dir(name)
    if state_problem:
        result.notes.append(f"the saved state could not be read ({state_problem}); it is removed with the rest")
    if state and state.repo_path:
        with reporter.step("Backing up the lab repository") as step:
            bundle = backup_repository(Path(state.repo_path), home / BACKUPS)
            result.backup = str(bundle) if bundle else None
            step.done(str(bundle) if bundle else "no working copy found")
    if state is None:
        _delete_unrecorded_kind_cluster(name, home, reporter, result)
    elif state.provider in PROVIDERS:
        cluster = provider_for(state.provider, name, home, kubeconfig=state.kubeconfig, context=state.context)
        result.cluster_deleted = cluster.delete(reporter)
        if cluster.kept_note:
            result.notes.append(cluster.kept_note)
    with reporter.step("Removing the local state") as step:
        if home.is_dir():
            for entry in sorted(home.iterdir()):
                if entry.name == BACKUPS:
                    continue
                _remove(entry)
                result.removed.append(entry.name)
        step.done(f"kept {home / BACKUPS}" if (home / BACKUPS).exists() else "nothing was there")
    return result


def _remove(entry: Path) -> None:
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot remove {exc.filename or entry}: {exc.strerror or exc}",
            fix=f"make {entry.parent} writable, then run `gitops-lab down` again",
        ) from exc


def _delete_unrecorded_kind_cluster(name: str, home: Path, reporter: Reporter, result: DownResult) -> None:
    """No saved state: delete a kind cluster of that name if kind is here to ask; never download kind for it."""
    kind = installed_kind()
    if kind is None:
        result.notes.append(
            f"nothing was saved for {name!r} and kind is not installed, so no kind cluster was "
            f"looked for; if one exists, delete it with `kind delete cluster --name {name}`"
        )
        return
    result.cluster_deleted = KindCluster(KindSettings(name=name), home, kind=kind).delete(reporter)

"""The Argo CD UI for the kind bed's Argo CD image: built from the pinned module's ui/ folder.

Argo CD's Go module carries the UI's source (ui/: package.json, yarn.lock, the
webpack config) but not its built assets: ui/dist/app holds only a placeholder.
argocd-server serves the UI from the assets embedded in its binary
(``//go:embed dist/app`` in ui/embed.go); index.html is read from there only, so
the ``--staticassets`` folder (/shared/app) cannot stand in for them. As
upstream's Dockerfile does, this step builds the UI (``yarn install``, then the
package's own ``yarn build``: webpack into ui/dist/app) and then builds the
``argocd`` binary again from a copy of the module holding those assets.

One dependency is not served by the npm registry: yarn.lock pins ``argo-ui``
as a Git commit of github.com/argoproj/argo-ui, which cannot be fetched here.
The step uses that commit from a Git repository named by
``$GITOPS_LAB_ARGO_UI_GIT`` (any clone that has it) or, when that is unset,
from the Git bundle ``shared/sources/argo-ui-<commit>.bundle`` beside the
checkout (CI: ``<checkout>/../shared/sources/``; a worktree finds it beside a
parent folder). ``git archive`` of the pinned commit, so Git's own hash checks
it; a bundle is cloned bare into a temporary folder under the cache first, as
git archives from a repository only. The archive is kept in
``<cache root>/sources/``. Without either, the Argo CD image is built without its
UI, the step says so in the bed's log and in ``argocd-ui/UNAVAILABLE``, and the
UI test skips with that reason. Every other package comes from the npm
registry as yarn.lock pins it; only the argo-ui entry is rewritten (to the local
archive), and the step fails if yarn changed any other entry.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from kindbed.layout import REPO_ROOT, cache_root, module_dir

ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
# yarn.lock is a yarn v1 lockfile: the classic yarn, pinned, from the npm registry
YARN_VERSION = "1.22.22"
GIT_ENV = "GITOPS_LAB_ARGO_UI_GIT"
ARGO_UI_GIT = re.compile(r'^"?argo-ui@git\+[^\n]*\n  version "[^"]+"\n  resolved "git\+[^#"]+#([0-9a-f]{40})"', re.M)
RECIPE = 1
Log = Callable[[str], None]


def sources_dir() -> Path:
    """Sources no registry serves, kept across version sets (the argo-ui archive)."""
    return cache_root() / "sources"


def shared_source_dirs() -> list[Path]:
    """The shared/sources folders beside the checkout or beside one of its parent folders, nearest first.

    CI's checkout is a fresh clone with a copy of shared/ beside it; a worktree
    (/work/wt/NAME) finds the one beside the main checkout's parent.
    """
    return [d for d in (parent / "shared" / "sources" for parent in REPO_ROOT.parents) if d.is_dir()]


def shared_bundles(commit: str = "*") -> list[Path]:
    """argo-ui Git bundles in the shared sources (``argo-ui-<commit>.bundle``), nearest first."""
    return [b for d in shared_source_dirs() for b in sorted(d.glob(f"argo-ui-{commit}.bundle"))]


def source_offered() -> bool:
    """Whether an argo-ui source is at hand (the stamp records it: providing one later rebuilds)."""
    return bool(os.environ.get(GIT_ENV)) or any(sources_dir().glob("argo-ui-*.tgz")) or bool(shared_bundles())


def step_key(versions: dict) -> dict:
    return {
        "argocd": versions["argocd"]["version"],
        "yarn": YARN_VERSION,
        "source": source_offered(),
        "node": bool(shutil.which("node") and shutil.which("npm")),
        "recipe": RECIPE,
    }


def out_dir(directory: Path) -> Path:
    return directory / "argocd-ui"


def binary(directory: Path) -> Path:
    """The argocd binary with the UI embedded (present when the UI was built)."""
    return out_dir(directory) / "bin" / "argocd"


def unavailable_file(directory: Path) -> Path:
    return out_dir(directory) / "UNAVAILABLE"


def unavailable_reason(directory: Path) -> str | None:
    """Why the bed's Argo CD has no UI, or None when it has one."""
    path = unavailable_file(directory)
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def expected_files(versions: dict) -> tuple[str, ...]:
    key = step_key(versions)
    return ("argocd-ui/bin/argocd",) if key["source"] and key["node"] else ("argocd-ui/UNAVAILABLE",)


def pinned_commit(ui_source: Path) -> str:
    match = ARGO_UI_GIT.search((ui_source / "yarn.lock").read_text(encoding="utf-8"))
    if not match:
        raise SystemExit(
            f"build.py: {ui_source / 'yarn.lock'} pins no argo-ui Git commit; update tests/kindbed/argocd_ui.py"
        )
    return match.group(1)


def argo_ui_archive(commit: str) -> Path | None:
    """argo-ui at ``commit`` as a tarball: from the cache, else archived from $GITOPS_LAB_ARGO_UI_GIT,
    else from the shared sources' bundle; None when none of them is at hand."""
    archive = sources_dir() / f"argo-ui-{commit}.tgz"
    if archive.is_file():
        return archive
    repo = os.environ.get(GIT_ENV)
    if repo:
        git_dir = ["--git-dir" if Path(repo, "HEAD").is_file() else "-C", repo]
        _archive(git_dir, commit, archive, f"{GIT_ENV}={repo}", "point it at a clone of argoproj/argo-ui that has it")
        return archive
    bundles = shared_bundles(commit)
    if not bundles:
        return None
    archive.parent.mkdir(parents=True, exist_ok=True)
    # git archive reads a repository, not a bundle: clone the bundle bare beside the archive, then drop the clone.
    with tempfile.TemporaryDirectory(prefix=".argo-ui-clone-", dir=archive.parent) as tmp:
        clone = Path(tmp) / "argo-ui.git"
        proc = subprocess.run(
            ["git", "clone", "--bare", "--quiet", str(bundles[0]), str(clone)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"build.py: cannot clone the argo-ui bundle {bundles[0]} (git clone: {proc.stderr.strip()}); "
                f"replace it with a bundle of argoproj/argo-ui, or set {GIT_ENV} to a clone that has {commit}"
            )
        _archive(
            ["--git-dir", str(clone)],
            commit,
            archive,
            f"the bundle {bundles[0]}",
            f"replace it with a bundle that has it, or set {GIT_ENV} to a clone that has it",
        )
    return archive


def _archive(git_dir: list[str], commit: str, archive: Path, source: str, fix: str) -> None:
    """``git archive`` of ``commit`` into ``archive`` (written whole or not at all); ``source`` and ``fix`` for the error."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_suffix(".tmp")
    proc = subprocess.run(
        ["git", *git_dir, "archive", "--format=tar.gz", "--prefix=package/", "-o", str(tmp), commit],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SystemExit(
            f"build.py: {source} has no argo-ui commit {commit} (git archive: {proc.stderr.strip()}); {fix}"
        )
    os.replace(tmp, archive)


def _lock_entries(text: str) -> dict[str, str]:
    """yarn v1 lockfile entries: header line -> body."""
    entries = {}
    for block in text.split("\n\n"):
        block = block.strip("\n")
        if block and not block.startswith("#"):
            head, _, body = block.partition("\n")
            entries[head] = body
    return entries


def _deps(body: str) -> str:
    return body.split("  dependencies:\n", 1)[1] if "  dependencies:\n" in body else ""


def _point_at_archive(ui: Path, archive: Path) -> str:
    """package.json and yarn.lock name the local archive for argo-ui; the removed lock entry."""
    package = json.loads((ui / "package.json").read_text(encoding="utf-8"))
    package["dependencies"]["argo-ui"] = f"file:{archive}"
    (ui / "package.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
    lock = (ui / "yarn.lock").read_text(encoding="utf-8")
    blocks = lock.split("\n\n")
    kept = [b for b in blocks if not b.lstrip("\n").startswith('"argo-ui@git+')]
    if len(kept) != len(blocks) - 1:
        raise SystemExit("build.py: yarn.lock has no single argo-ui Git entry; update tests/kindbed/argocd_ui.py")
    (ui / "yarn.lock").write_text("\n\n".join(kept), encoding="utf-8")
    return next(b for b in blocks if b.lstrip("\n").startswith('"argo-ui@git+'))


def _check_lock(before: str, after: str, argo_ui_entry: str) -> None:
    """yarn may add the argo-ui entry (same dependencies as upstream's) and nothing else."""
    old, new = _lock_entries(before), _lock_entries(after)
    old.pop(argo_ui_entry.strip("\n").partition("\n")[0], None)
    added = {k: v for k, v in new.items() if k not in old}
    changed = [k for k in old if k not in new or new[k] != old[k]]
    argo = [k for k in added if k.startswith('"argo-ui@file:')]
    if changed or len(added) != 1 or len(argo) != 1:
        raise SystemExit(
            f"build.py: yarn install moved yarn.lock away from Argo CD's pins (changed: {changed[:5]}, "
            f"added: {list(added)[:5]}); the UI is built only as the lockfile pins it"
        )
    if _deps(added[argo[0]]) != _deps(argo_ui_entry.strip("\n")):
        raise SystemExit(
            "build.py: the argo-ui archive's dependencies differ from yarn.lock's argo-ui entry; "
            "the archive is not the pinned commit"
        )


def _yarn(directory: Path, log: Log) -> Path:
    prefix = directory / "work" / f"yarn-{YARN_VERSION}"
    yarn = prefix / "node_modules" / ".bin" / "yarn"
    if not yarn.is_file():
        subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent", f"yarn@{YARN_VERSION}"],
            check=True,
        )
        log(f"argocd-ui: yarn {YARN_VERSION} from npm")
    return yarn


def _run(args: list[str], cwd: Path, logfile: Path, env: dict[str, str] | None = None) -> None:
    with logfile.open("ab") as out:
        proc = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"build.py: {' '.join(args[:3])} failed in {cwd}; see {logfile}")


def build(directory: Path, versions: dict, jobs: int, log: Log) -> None:
    """Build the UI and the argocd binary embedding it, or record why it cannot be built here."""
    from testbed import build as testbed_build

    out = out_dir(directory)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    version = versions["argocd"]["version"]
    module = module_dir(ARGOCD_MODULE, version)
    commit = pinned_commit(module / "ui")
    reason = None
    if not (shutil.which("node") and shutil.which("npm")):
        reason = "no node and npm on this machine (apt-get install nodejs npm), which build Argo CD's UI"
    elif not (archive := argo_ui_archive(commit)):
        if source_offered():
            raise SystemExit(
                f"build.py: {sources_dir()} has no argo-ui-{commit}.tgz and the shared sources no "
                f"argo-ui-{commit}.bundle (the commit Argo CD {version}'s yarn.lock pins): set {GIT_ENV} to a "
                "clone of argoproj/argo-ui that has it"
            )
        reason = (
            f"Argo CD {version}'s UI needs argo-ui at Git commit {commit[:12]} (its yarn.lock), which no "
            f"registry serves: set {GIT_ENV} to a clone of argoproj/argo-ui that has it, or put "
            f"argo-ui-{commit}.bundle in ../shared/sources/ beside the checkout, and build again"
        )
    if reason:
        unavailable_file(directory).write_text(reason + "\n", encoding="utf-8")
        log(f"argocd-ui: not built, the Argo CD image has no UI: {reason}")
        return
    assert archive is not None  # no reason: the archive was found

    work = directory / "work" / "argocd-ui"
    if work.exists():
        shutil.rmtree(work)
    source = work / "argo-cd"
    shutil.copytree(module, source, ignore=shutil.ignore_patterns("docs"))
    subprocess.run(["chmod", "-R", "u+w", str(source)], check=True)
    ui = source / "ui"
    logfile = directory / "argocd-ui.log"
    logfile.unlink(missing_ok=True)
    yarn = _yarn(directory, log)
    before = (ui / "yarn.lock").read_text(encoding="utf-8")
    entry = _point_at_archive(ui, archive)

    t0 = time.monotonic()
    _run(
        [
            str(yarn),
            "install",
            "--non-interactive",
            "--network-timeout",
            "600000",
            "--cache-folder",
            str(cache_root() / "yarn-cache"),
        ],
        ui,
        logfile,
    )
    _check_lock(before, (ui / "yarn.lock").read_text(encoding="utf-8"), entry)
    log(f"argocd-ui: yarn install (npm registry, as yarn.lock pins): {time.monotonic() - t0:.0f}s")

    t0 = time.monotonic()
    # as upstream's Dockerfile builds it
    env = dict(
        os.environ,
        NODE_ENV="production",
        NODE_ONLINE_ENV="online",
        HOST_ARCH="amd64",
        ARGO_VERSION=version,
        NODE_OPTIONS="--max_old_space_size=8192",
    )
    _run([str(yarn), "--offline", "build"], ui, logfile, env)
    if not (ui / "dist" / "app" / "index.html").is_file():
        raise SystemExit(f"build.py: yarn build made no ui/dist/app/index.html; see {logfile}")
    shutil.rmtree(ui / "node_modules")
    log(f"argocd-ui: yarn build (webpack): {time.monotonic() - t0:.0f}s")

    t0 = time.monotonic()
    argocd = next(c for c in testbed_build.components(versions) if c.name == "argocd")
    argocd = dataclasses.replace(argocd, source_dir=str(source), crd_dirs=[])
    testbed_build.Builder(jobs, False, out).build(argocd)
    log(f"argocd-ui: argocd with the UI embedded (go build): {time.monotonic() - t0:.0f}s")
    shutil.rmtree(work)

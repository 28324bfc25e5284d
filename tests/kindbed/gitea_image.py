"""Gitea's rootless image for the kind bed, laid out as upstream's Dockerfile.rootless (v1.27.3) lays it out.

Upstream: Alpine, with bash, ca-certificates, dumb-init, gettext (envsubst),
git, curl, gnupg and openssh-keygen; the user git (1000:1000, home
/var/lib/gitea/git, shell bash); /var/lib/gitea and /etc/gitea owned by it;
the module's docker/rootless/ folder copied to / as it is (docker-entrypoint.sh,
docker-setup.sh, environment-to-ini, the /usr/local/bin/gitea wrapper and
/etc/templates/app.ini); the binary at /app/gitea/gitea; user 1000, the
GITEA_* environment, EXPOSE 2222 3000, ENTRYPOINT dumb-init ->
docker-entrypoint.sh. docker-setup.sh writes app.ini from the template (envsubst)
on the first start, then runs environment-to-ini, which is ``gitea config
edit-ini --in-place --apply-env``: the binary itself applies every
GITEA__section__KEY variable to app.ini, as in upstream's image.

Here: Debian bookworm by debootstrap (the same Debian packages by their Debian
names) instead of Alpine, in a tree of its own (rootfs/gitea): adding these
packages to the pod base every other image starts from would rebuild every
image of the bed. The files come from the pinned module at build time and are
not kept in the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = "docker.gitea.com/gitea"
BASE = "gitops-lab-kindbed/gitea-base:bookworm"
# Dockerfile.rootless's apk packages by their Debian names (gettext-base holds
# envsubst, openssh-client ssh-keygen)
PACKAGES = (
    "bash",
    "ca-certificates",
    "dumb-init",
    "gettext-base",
    "git",
    "curl",
    "gnupg",
    "openssh-client",
)
USER, UID, HOME = "git", 1000, "/var/lib/gitea/git"
WORK_DIR = "/var/lib/gitea"
# the testbed's binary reads these from STATIC_ROOT_PATH when no frontend could be embedded
SHARE_DIRS = ("templates", "options", "public")
RECIPE = 1


def image_ref(versions: dict) -> str:
    """docker.gitea.com/gitea:1.27.3-rootless for gitea v1.27.3 (the name the product's manifests use)."""
    return f"{REPOSITORY}:{versions['gitea']['version'].lstrip('v')}-rootless"


def step_key(versions: dict) -> dict:
    return {"gitea": versions["gitea"]["version"], "packages": PACKAGES, "recipe": RECIPE}


def prepare_tree(tree: Path) -> None:
    """The user git and the folders it owns, in the debootstrapped tree (idempotent)."""
    passwd, group = tree / "etc" / "passwd", tree / "etc" / "group"
    if f"\n{USER}:" not in "\n" + passwd.read_text(encoding="utf-8"):
        with passwd.open("a", encoding="utf-8") as fh:
            fh.write(f"{USER}:x:{UID}:{UID}::{HOME}:/bin/bash\n")
        with group.open("a", encoding="utf-8") as fh:
            fh.write(f"{USER}:x:{UID}:\n")
    for folder in (WORK_DIR, "/etc/gitea"):
        path = tree / folder.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, UID, UID)


def context_files(module: Path, binary: Path, share: Path | None) -> dict[str, Path]:
    """Build context name -> source: the module's docker/rootless/ as it is, the binary, and
    (without a frontend) the testbed's share/gitea."""
    rootless = module / "docker" / "rootless"
    files = {str(Path("rootless") / p.relative_to(rootless)): p for p in sorted(rootless.rglob("*")) if p.is_file()}
    files["app/gitea/gitea"] = binary
    for rel in SHARE_DIRS if share else ():
        assert share is not None
        for p in sorted((share / rel).rglob("*")):
            if p.is_file():
                files[str(Path("app/gitea") / rel / p.relative_to(share / rel))] = p
    return files


def fix_modes(context: Path) -> None:
    """The module cache's files are read-only: scripts and binary 0755, the rest 0644, as upstream's chmod."""
    for path in context.rglob("*"):
        if path.is_symlink():
            continue
        executable = path.is_dir() or path.parent.name == "bin" or path == context / "app" / "gitea" / "gitea"
        path.chmod(0o755 if executable else 0o644)


def dockerfile(embedded: bool) -> list[str]:
    lines = [
        f"FROM {BASE}",
        "COPY rootless /",
        "COPY app /app",
        "EXPOSE 2222 3000",
        f"USER {UID}:{UID}",
        f"ENV GITEA_WORK_DIR={WORK_DIR} GITEA_CUSTOM={WORK_DIR}/custom GITEA_TEMP=/tmp/gitea TMPDIR=/tmp/gitea",
        f"ENV GITEA_APP_INI=/etc/gitea/app.ini HOME={HOME}",
    ]
    if not embedded:
        # templates, options and public/ from the files beside the binary (see gitea_ui.py's UNAVAILABLE)
        lines.append("ENV GITEA__server__STATIC_ROOT_PATH=/app/gitea")
    return lines + [
        f'VOLUME ["{WORK_DIR}", "/etc/gitea"]',
        f"WORKDIR {WORK_DIR}",
        'ENTRYPOINT ["/usr/bin/dumb-init", "--", "/usr/local/bin/docker-entrypoint.sh"]',
        "CMD []",
    ]

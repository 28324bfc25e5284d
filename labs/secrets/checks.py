"""Checks of the secrets lab: a leaked AWS key, and which of the two right fixes the learner chose.

The key is made when the step begins, from the repository's root commit, so the
check can recompute it later without keeping it anywhere; it is assembled from
parts so that no key-shaped literal sits in gitops-lab's own tree. It is not a
real credential: no AWS account ever issued it.

Everything is judged on what was **pushed**: a throwaway clone of origin/main
(only that branch, so lab tags and backup refs do not count), scanned by the
real secret-scan gate (gitleaks).
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

DEPLOY_FILE = "ci/deploy.env"
#: The lab asks more of a reason than the gate does (10): a sentence someone can check.
MIN_REASON = 30
#: A file the allowlist must not hide: it proves the AWS rule still works outside the one file named.
PROBE_FILE = "ci/registry.env"
AUTHOR = ("Hasty Helper", "hasty@example.com")


def _made_up(ctx: Any, purpose: str, length: int, alphabet: str) -> str:
    root = ctx.git.out("rev-list", "--max-parents=0", "HEAD").split()[-1]
    digest = hashlib.sha256(f"gitops-lab secrets lab {purpose} {root}".encode()).digest()
    if alphabet == "base32":
        return base64.b32encode(digest).decode()[:length]
    return base64.b64encode(digest + hashlib.sha256(digest).digest()).decode()[:length]


def planted_credential(ctx: Any, purpose: str = "leak") -> tuple[str, str]:
    """(access key id, secret access key) in AWS's formats, the same for a repository every time."""
    prefix = "AK" + "IA"  # in two parts: this project's own secret scan must not see a key here
    return prefix + _made_up(ctx, purpose, 16, "base32"), _made_up(ctx, purpose + " secret", 40, "base64")


def deploy_settings(key_id: str | None, secret: str | None) -> str:
    lines = [
        "# Where the pipeline uploads model artifacts (read by the pipeline's release stage).",
        "AWS_REGION=eu-west-1",
        "ARTIFACT_BUCKET=s3://pump-models-artifacts",
    ]
    if key_id and secret:
        lines += [f"AWS_ACCESS_KEY_ID={key_id}", f"AWS_SECRET_ACCESS_KEY={secret}"]
    else:
        lines.append("# Credentials: the CI secret store's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, never Git.")
    return "\n".join(lines) + "\n"


# -- setup ----------------------------------------------------------------------
def plant_leak(ctx: Any) -> None:
    """A teammate's commit, made but not pushed, that adds the deploy settings with an AWS key in them."""
    from gitops_lab.adapters.repo import publish
    from gitops_lab.adapters.repo.git import Git

    git = ctx.git
    publish.check_clean(git)
    publish.catch_up(git)
    key_id, secret = planted_credential(ctx)
    target = ctx.repo / DEPLOY_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(deploy_settings(key_id, secret), encoding="utf-8")
    author = Git(ctx.repo, env={"GIT_AUTHOR_NAME": AUTHOR[0], "GIT_AUTHOR_EMAIL": AUTHOR[1]})
    # Not pushed, on purpose: the pipeline run before the push is what catches it.
    publish.commit(author, [DEPLOY_FILE], "Add the S3 settings for uploading model artifacts\n")


# -- checks ---------------------------------------------------------------------
def scan_required(ctx: Any) -> tuple[bool, str]:
    """gates.yaml as pushed requires secret-scan for staging and prod, and the pushed history scans clean."""
    from gitops_lab.gates.config import config_from_text

    config = config_from_text(ctx.show("gates.yaml"))
    missing = [env for env in ("staging", "prod") if "secret-scan" not in config.required_for(env)]
    if missing:
        return False, f"gates.yaml on origin/main does not require secret-scan for {' and '.join(missing)}"
    result = _scan_pushed(ctx)
    if isinstance(result, str):
        return False, result
    if not result.passed:
        return False, f"secret-scan fails on origin/main: {result.summary}"
    return True, f"secret-scan is required for staging and prod, and passes on origin/main: {result.summary}"


def leak_fixed(ctx: Any) -> tuple[bool, str]:
    """Which fix was pushed: the key gone from every pushed commit, or an allowlist entry with a reason."""
    ref = ctx.pushed()
    key_id, secret = planted_credential(ctx)
    holding = _commits_with(ctx, ref, (key_id, secret))
    if ctx.show(DEPLOY_FILE) is None and not holding:
        unpushed = ctx.unpushed()
        where = f" (yours, not pushed: {'; '.join(unpushed)})" if unpushed else ""
        return False, (
            f"{DEPLOY_FILE} is not on origin/main yet{where}: ship the deploy settings without the key, "
            "or with an allowlist entry that says why the key is not a credential"
        )
    result = _scan_pushed(ctx)
    if isinstance(result, str):
        return False, result
    if not holding:
        if not result.passed:
            return False, f"the key is gone from history, but secret-scan still fails on origin/main: {result.summary}"
        return True, (
            f"fixed by rewriting history: no commit on origin/main holds the key, and {DEPLOY_FILE} ships without "
            "it; secret-scan passes (rotate the key too: it was on a laptop)"
        )
    shown = ", ".join(c[:7] for c in holding)
    entry = _allowlist_entry(ctx)
    if entry is None:
        in_tree = any(value in (ctx.show(DEPLOY_FILE) or "") for value in (key_id, secret))
        if not in_tree:
            return False, (
                f"{DEPLOY_FILE} no longer holds the key, but commit {shown} on origin/main still does: a deletion in "
                "a new commit leaves the key in history for anyone who clones. Rewrite the commit before it is "
                f"pushed; once pushed (this server refuses force pushes), rotate it and allowlist the revoked key in "
                f".gitleaks.toml with a reason of at least {MIN_REASON} characters naming {DEPLOY_FILE}"
            )
        return False, f"commit {shown} on origin/main holds the AWS key in {DEPLOY_FILE}: {result.summary}"
    label, reason = entry
    if len(reason) < MIN_REASON:
        return False, (
            f"{label} names {DEPLOY_FILE}, but its reason has {len(reason)} characters: write at least {MIN_REASON} "
            "saying why this key is not a credential (revoked when, kept for what)"
        )
    if not result.passed:
        return False, f"{label} names {DEPLOY_FILE}, but secret-scan still fails on origin/main: {result.summary}"
    probe = _probe_still_caught(ctx)
    if probe:
        return False, probe
    return True, f"fixed by an allowlist: {label} names {DEPLOY_FILE} with the reason {reason!r}"


# -- solve ----------------------------------------------------------------------
def rewrite_and_push(ctx: Any) -> None:
    """The first right fix: rewrite the unpushed commit so it never held the key, then push."""
    from gitops_lab.adapters.repo import publish

    git = ctx.git
    ref = ctx.pushed()
    if not git.out("log", "--format=%h", f"{ref}..HEAD"):
        raise RuntimeError("no unpushed commit to rewrite: start the step again with `gitops-lab lab reset`")
    (ctx.repo / DEPLOY_FILE).write_text(deploy_settings(None, None), encoding="utf-8")
    git.run("add", DEPLOY_FILE)
    git.run("commit", "--quiet", "--amend", "--no-edit")
    with publish.published_or_undone(git, f"lab {ctx.lab.id}'s rewritten commit"):
        publish.push(git)


# -- helpers --------------------------------------------------------------------
def _commits_with(ctx: Any, ref: str, values: tuple[str, ...]) -> list[str]:
    """The commits reachable from ref that add one of values: git's pickaxe finds the commits that add or
    remove it, and those whose tree holds it added it."""
    found: list[str] = []
    for value in values:
        for sha in ctx.git.out("log", "--format=%H", f"-S{value}", ref).split():
            if sha not in found and ctx.git.ok("grep", "--quiet", "--fixed-strings", value, sha):
                found.append(sha)
    return found


@contextmanager
def _pushed_clone(ctx: Any) -> Iterator[Path]:
    """A throwaway clone of origin/main alone: what was pushed, without lab tags, backup refs or local work."""
    ref = ctx.git.out("rev-parse", "--symbolic-full-name", ctx.pushed()) or "HEAD"
    with tempfile.TemporaryDirectory(prefix="gitops-lab-secrets-lab-") as tmp:
        root = Path(tmp)
        _git(root, "init", "--quiet", "--initial-branch", "main")
        _git(root, "fetch", "--quiet", "--no-tags", str(ctx.repo), ref)
        _git(root, "checkout", "--quiet", "-B", "main", "FETCH_HEAD")
        yield root


def _scan_pushed(ctx: Any) -> Any:
    """The secret-scan gate on a clone of origin/main alone (history and tree), or why it cannot run."""
    from gitops_lab.gates import secret_scan
    from gitops_lab.gates.result import GateContext

    if secret_scan.find_scanner() is None:
        return f"gitleaks is not installed: {secret_scan.INSTALL_FIX}"
    with _pushed_clone(ctx) as root:
        return secret_scan.check(GateContext(root, "dev", "staging", "", "", {"commits": "all"}))


def _probe_still_caught(ctx: Any) -> str | None:
    """Why the pushed .gitleaks.toml would hide a key outside the file it names; None when it would not."""
    from gitops_lab.gates import secret_scan
    from gitops_lab.gates.result import GateContext

    config = ctx.show(secret_scan.CONFIG_FILE)
    if config is None:
        return None
    key_id, secret = planted_credential(ctx, "probe")
    with tempfile.TemporaryDirectory(prefix="gitops-lab-secrets-probe-") as tmp:
        root = Path(tmp)
        (root / secret_scan.CONFIG_FILE).write_text(config, encoding="utf-8")
        (root / PROBE_FILE).parent.mkdir(parents=True)
        (root / PROBE_FILE).write_text(deploy_settings(key_id, secret), encoding="utf-8")
        _git(root, "init", "--quiet", "--initial-branch", "main")
        _git(root, "add", ".")
        _git(root, "-c", "user.name=probe", "-c", "user.email=probe@example.com", "commit", "--quiet", "-m", "probe")
        result = secret_scan.check(GateContext(root, "dev", "staging", "", "", {"commits": "all"}))
    if any(f"{PROBE_FILE}:" in line and "aws-access-token" in line for line in result.details):
        return None
    return (
        f"{secret_scan.CONFIG_FILE} would also hide an AWS key in {PROBE_FILE} (a file it should not cover): keep "
        f"gitleaks' rules ([extend] useDefault = true) and allowlist only {DEPLOY_FILE}, by a path pattern "
        f"such as '''^{re.escape(DEPLOY_FILE)}$'''"
    )


@dataclass
class _Entry:
    label: str
    reason: str
    names_file: bool


def _allowlist_entry(ctx: Any) -> tuple[str, str] | None:
    """(label, reason) of the exception that names DEPLOY_FILE, the longest reason first; None without one."""
    entries = _toml_entries(ctx.show(".gitleaks.toml")) + _ignore_entries(ctx.show(".gitleaksignore"))
    naming = sorted((e for e in entries if e.names_file), key=lambda e: len(e.reason), reverse=True)
    return (naming[0].label, naming[0].reason) if naming else None


def _toml_entries(text: str | None) -> list[_Entry]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    if text is None:
        return []
    try:
        data = tomllib.loads(text)
    except ValueError:
        return []
    entries = []
    for i, entry in enumerate(data.get("allowlists") or []):
        if not isinstance(entry, dict):
            continue
        reason = str(entry.get("description") or "").strip()
        names = any(_matches(p, DEPLOY_FILE) for p in entry.get("paths") or [])
        entries.append(_Entry(f".gitleaks.toml [[allowlists]] #{i + 1}", reason, names))
    return entries


def _ignore_entries(text: str | None) -> list[_Entry]:
    if text is None:
        return []
    lines = text.splitlines()
    entries = []
    for number, line in enumerate(lines, 1):
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        above = lines[number - 2].strip() if number > 1 else ""
        reason = above.lstrip("#").strip() if above.startswith("#") else ""
        # A fingerprint is commit:file:rule:line (history) or file:rule:line (the tree).
        names = f":{DEPLOY_FILE}:" in body or body.startswith(f"{DEPLOY_FILE}:")
        entries.append(_Entry(f".gitleaksignore:{number}", reason, names))
    return entries


def _matches(pattern: Any, path: str) -> bool:
    try:
        return re.search(str(pattern), path) is not None
    except re.error:
        return False


def _git(root: Path, *args: str) -> None:
    from gitops_lab.adapters.repo.git import Git

    Git(root).run(*args)


# -- step 3: the model server's API key, kept in Git only encrypted (SOPS + age) --------
API_KEY_ENV = "staging"
API_KEY_SECRET = "model-api-key"
#: Where the solution writes it; the check finds the Secret wherever the overlay renders it from.
API_KEY_FILE = f"overlays/{API_KEY_ENV}/api-key.yaml"
SOPS_FIX = "install sops (v3.13.2: scripts/install-ci-tools builds it), or put it on PATH or in $GITOPS_LAB_SOPS"


def api_key_encrypted(ctx: Any) -> tuple[bool, str]:
    """Staging's overlay as pushed renders Secret/model-api-key, SOPS-encrypted for the lab's own age key
    (the one `secrets init` keeps in the state folder), and no pushed commit holds the value it encrypts."""
    from gitops_lab.adapters.renderer import RenderError
    from gitops_lab.adapters.repo.layout import RepoLayout
    from gitops_lab.gates import policy
    from gitops_lab.gates.sops_secrets import INIT_FIX, secret_problems
    from gitops_lab.workflows.secrets import key_path, lab_recipient

    name = _env_name(ctx)
    where = f"overlays/{API_KEY_ENV} on origin/main"
    with _pushed_clone(ctx) as root:
        try:
            objects = policy.render(root, API_KEY_ENV, RepoLayout(root).model_version(API_KEY_ENV))
        except RenderError as error:
            return False, f"{where} does not build: {str(error).splitlines()[0]}"
        secret = next((o for o in objects if _is_api_key(o)), None)
        if secret is None:
            unpushed = ctx.unpushed()
            mine = f" (yours, not pushed: {'; '.join(unpushed)}: run `git push`)" if unpushed else ""
            return False, (
                f"{where} renders no Secret/{API_KEY_SECRET}{mine}: write it, encrypt it with sops, list its file "
                f"under resources in overlays/{API_KEY_ENV}/kustomization.yaml, commit and push"
            )
        recipient = lab_recipient(name)
        if recipient is None:
            return False, f"the lab has no age key yet ({key_path(name)} is missing): {INIT_FIX}"
        # The lab's own key, not whatever .sops.yaml names: the cluster decrypts with this one.
        problems = secret_problems(secret, [recipient])
        if problems:
            return False, problems[0]
        leaked = _plaintext_pushed(ctx, root)
        served = ""
        if leaked or _cluster_decrypts(ctx):
            current = _decrypted_values(root, name)
            if isinstance(current, str):
                return False, current
            if _cluster_decrypts(ctx):
                problem = _served_problem(ctx, current)
                if problem:
                    return False, problem
                served = f"; {ctx.environment().engine.display_name} decrypted it into the cluster's Secret"
        if not leaked:
            return (
                True,
                f"Secret/{API_KEY_SECRET} in {where} is SOPS-encrypted for the lab's key, and no pushed commit holds "
                f"it in plaintext{served}",
            )
        commit, values = leaked
        if set(values.values()) & set(current.values()):
            return False, (
                f"commit {commit[:7]} on origin/main holds Secret/{API_KEY_SECRET} in plaintext, and the encrypted "
                "Secret still holds that value: a pushed key is leaked for good. Rotate it (a new value), encrypt "
                "the new one, commit and push"
            )
        return True, (
            f"Secret/{API_KEY_SECRET} in {where} is SOPS-encrypted for the lab's key, with a new value: the one "
            f"commit {commit[:7]} leaked in plaintext was rotated{served}"
        )


def _cluster_decrypts(ctx: Any) -> bool:
    """A cluster whose engine decrypts the lab's SOPS files (Flux natively, Argo CD with the lab's plugin)."""
    return bool(ctx.has_cluster and ctx.environment().engine.decryption and not ctx.environment().state.tenant)


def _served_problem(ctx: Any, decrypted: dict[str, str]) -> str | None:
    """Why the cluster does not serve staging's Secret with the values the pushed file decrypts to; None when it does."""
    import base64

    lab = ctx.environment()
    engine, namespace = lab.engine, lab.namespace(API_KEY_ENV)
    secret = engine.applier.get("v1", "Secret", API_KEY_SECRET, namespace)
    fix = (
        f"run `gitops-lab secrets init` if you have not, then `gitops-lab sync --env {API_KEY_ENV}` "
        "(when it fails, its last line says why)"
    )
    if secret is None:
        return f"{engine.display_name} has not applied Secret/{API_KEY_SECRET} in {namespace}: {fix}"
    served = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items()}
    if any(served.get(k) != v for k, v in decrypted.items()):
        return (
            f"the cluster's Secret/{API_KEY_SECRET} in {namespace} does not hold what the pushed file decrypts to "
            f"({engine.display_name} has not applied it yet): {fix}"
        )
    return None


def encrypt_api_key(ctx: Any) -> None:
    """What the step asks: `gitops-lab secrets init`, then the Secret written, encrypted with the real sops for
    the lab's key (before any commit, so Git never holds the plaintext), listed in the overlay, pushed."""
    import secrets

    import yaml

    from gitops_lab.adapters.repo import publish
    from gitops_lab.errors import PreflightError
    from gitops_lab.gates.ci_tools import find_tool
    from gitops_lab.workflows.secrets import init_git_side, init_secrets

    sops = find_tool("sops", "GITOPS_LAB_SOPS")
    if sops is None:
        raise PreflightError("sops is not installed", fix=SOPS_FIX)
    deadline = ctx.deadline()
    if ctx.has_cluster:
        init_secrets(ctx.environment(), deadline)  # exactly `gitops-lab secrets init`
    else:
        init_git_side(_env_name(ctx), ctx.repo, deadline)
    git = ctx.git
    publish.check_clean(git)
    publish.catch_up(git)
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": API_KEY_SECRET},
        "type": "Opaque",
        "stringData": {"API_KEY": f"sk-model-{secrets.token_hex(16)}"},
    }
    target = ctx.repo / API_KEY_FILE
    target.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    try:
        made = _run_sops(sops, ["encrypt", "--in-place", API_KEY_FILE], ctx.repo, deadline.remaining())
    finally:
        if target.is_file() and "sops:" not in target.read_text(encoding="utf-8"):
            target.unlink()  # never leave the plaintext behind
    if made.returncode != 0:
        raise PreflightError(f"sops encrypt failed: {_last_line(made.stderr)}", fix=SOPS_FIX)
    overlay = ctx.repo / "overlays" / API_KEY_ENV / "kustomization.yaml"
    text = overlay.read_text(encoding="utf-8")
    overlay.write_text(text.replace("  - ../../base\n", "  - ../../base\n  - api-key.yaml\n", 1), encoding="utf-8")
    with publish.published_or_undone(git, f"lab {ctx.lab.id}'s encrypted API key"):
        sha = publish.commit(
            git,
            [API_KEY_FILE, str(overlay.relative_to(ctx.repo))],
            "Give the staging model server its API key (SOPS)\n",
        )
        publish.push(git)
    if _cluster_decrypts(ctx):
        ctx.converge([API_KEY_ENV], sha)  # the engine decrypts it: staging must apply the commit and report Ready


def _env_name(ctx: Any) -> str:
    from gitops_lab.state import DEFAULT_NAME

    return str(ctx.name or DEFAULT_NAME)


def _is_api_key(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("kind") == "Secret"
        and (obj.get("metadata") or {}).get("name") == API_KEY_SECRET
    )


def _api_key_files(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(path, manifest) of each file of the overlay holding Secret/model-api-key, as in this tree."""
    import yaml

    found = []
    for path in sorted((root / "overlays" / API_KEY_ENV).rglob("*.y*ml")):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        found += [(str(path.relative_to(root)), d) for d in documents if _is_api_key(d)]
    return found


def _plaintext_pushed(ctx: Any, root: Path) -> tuple[str, dict[str, str]] | None:
    """(commit, its plaintext values) of the newest pushed commit since the lab's start that holds
    Secret/model-api-key without SOPS; None when none does."""
    import yaml

    since = ctx.since()
    span = f"{since}..HEAD" if since else "HEAD"
    clone = _clone_git(root)
    for sha in clone.out("log", "--format=%H", span, "--", f"overlays/{API_KEY_ENV}").split():
        for rel in clone.out(
            "diff-tree", "--no-commit-id", "--name-only", "-r", sha, "--", f"overlays/{API_KEY_ENV}"
        ).split():
            shown = clone.run("show", f"{sha}:{rel}", check=False)
            try:
                documents = list(yaml.safe_load_all(shown.stdout)) if shown.returncode == 0 else []
            except yaml.YAMLError:
                continue
            for doc in documents:
                if _is_api_key(doc) and "sops" not in doc:
                    values = {k: str(v) for f in ("data", "stringData") for k, v in (doc.get(f) or {}).items()}
                    if values:
                        return sha, values
    return None


def _decrypted_values(root: Path, env_name: str) -> dict[str, str] | str:
    """The values of the pushed, encrypted Secret, decrypted by the real sops with the lab's key; or why not."""
    import yaml

    from gitops_lab.gates.ci_tools import find_tool
    from gitops_lab.workflows.secrets import key_path

    sops = find_tool("sops", "GITOPS_LAB_SOPS")
    if sops is None:
        return f"sops is not installed: {SOPS_FIX}"
    [(rel, _), *_] = _api_key_files(root) or [("", {})]
    if not rel:
        return f"no file in overlays/{API_KEY_ENV} holds Secret/{API_KEY_SECRET} itself (a generator cannot be checked)"
    out = _run_sops(sops, ["decrypt", rel], root, 30.0, key_file=key_path(env_name))
    if out.returncode != 0:
        return f"{rel} does not decrypt with the lab's key: {_last_line(out.stderr)}"
    data = yaml.safe_load(out.stdout) or {}
    return {k: str(v) for f in ("data", "stringData") for k, v in (data.get(f) or {}).items()}


def _run_sops(sops: str, args: list[str], cwd: Path, timeout: float, key_file: Path | None = None) -> Any:
    import os
    import subprocess

    from gitops_lab.errors import PreflightError
    from gitops_lab.processes import run_bounded

    # The learner's own SOPS_* settings (another key, another config) must not choose for the lab.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    if key_file is not None:
        env["SOPS_AGE_KEY_FILE"] = str(key_file)
    try:
        return run_bounded([sops, *args], cwd=cwd, env=env, timeout=max(1.0, min(60.0, timeout)))
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PreflightError(f"sops {args[0]} could not run: {error}", fix=SOPS_FIX) from error


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no message"])[-1]


def _clone_git(root: Path) -> Any:
    from gitops_lab.adapters.repo.git import Git

    return Git(root)

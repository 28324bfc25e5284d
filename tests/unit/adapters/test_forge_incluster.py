"""`up --git-server gitea`'s Gitea, as rendered and kept on this machine (no cluster): its objects, the
secret key and accounts kept once (0600), the URLs the host and the engines use, and main's rule.

Gitea itself on kind, for both engines: tests/e2e/kind/test_kind_gitea_e2e.py."""

from __future__ import annotations

import re
import stat

import pytest

from gitops_lab.adapters.forge.incluster import (
    DIRECT_PUSH_FILES,
    GiteaGitServer,
    GiteaSettings,
    image_references,
    render_manifests,
)
from gitops_lab.adapters.gitserver import lab_git_server
from gitops_lab.adapters.gitserver.credentials import saved_credentials
from gitops_lab.resources import environments_template
from gitops_lab.workflows.up import UpOptions, check_options
from gitops_lab.errors import UsageError


@pytest.fixture
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GITOPS_LAB_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def _by_kind(objects):
    return {o["kind"]: o for o in objects}


def test_gitea_is_rendered_namespace_first_with_its_key_and_the_engines_url():
    settings = GiteaSettings()
    objects = render_manifests(settings, "k3y")
    assert [o["kind"] for o in objects] == ["Namespace", "Secret", "PersistentVolumeClaim", "Service", "Deployment"]
    assert {o["metadata"].get("namespace") for o in objects[1:]} == {"gitops-lab-git"}
    found = _by_kind(objects)
    assert found["Secret"]["stringData"] == {"secret-key": "k3y"}
    assert found["Service"]["spec"]["ports"][0]["nodePort"] == settings.ports.git_node
    container = found["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    # webhooks carry the URL the engines fetch, so Argo CD matches them; pages use the URL asked
    assert env["ROOT_URL"] == "http://gitea.gitops-lab-git.svc.cluster.local:3000/"
    assert env["GITEA__server__PUBLIC_URL_DETECTION"] == "auto"
    assert env["DISABLE_REGISTRATION"] == "true" and env["INSTALL_LOCK"] == "true"
    assert container["image"] == image_references(settings)[0]
    assert "@sha256:" in container["image"]
    # a new key restarts the pod (its app.ini is written from the variables at start)
    again = _by_kind(render_manifests(settings, "other"))["Deployment"]
    annotation = "gitops-lab.io/config-hash"
    assert (
        again["spec"]["template"]["metadata"]["annotations"][annotation]
        != found["Deployment"]["spec"]["template"]["metadata"]["annotations"][annotation]
    )


def test_the_secret_key_and_the_accounts_are_made_once_and_kept_private(state_home):
    server = GiteaGitServer("lab1")
    key = server.secret_key()
    assert len(key) >= 32 and server.secret_key() == key
    path = state_home / "lab1" / "forge-secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    repository = server.repository()
    assert repository == server.repository()  # the same accounts on every read
    assert (repository.host_url, repository.engine_url) == (
        "http://localhost:8180/learner/lab.git",
        "http://gitea.gitops-lab-git.svc.cluster.local:3000/learner/lab.git",
    )
    assert repository.platform_url == "http://localhost:8180/learner/ml-platform-pipelines.git"
    assert (repository.forge_url, repository.forge_credentials) == (
        "http://localhost:8180",
        str(state_home / "lab1" / "forge-credentials.json"),
    )
    assert stat.S_IMODE((state_home / "lab1" / "forge-credentials.json").stat().st_mode) == 0o600
    # every command's Git calls push as the learner and the engines read as `engine`
    kept = saved_credentials("lab1")
    assert kept is not None and (kept.writer, kept.reader) == (repository.writer, repository.reader)
    assert repository.writer is not None and repository.writer.username == "learner"


def test_up_chooses_the_server_and_refuses_gitea_on_an_existing_cluster():
    assert isinstance(lab_git_server("x", kind="gitea"), GiteaGitServer)
    assert not isinstance(lab_git_server("x"), GiteaGitServer)
    with pytest.raises(UsageError, match="--git-server is for kind"):
        check_options(UpOptions(provider="existing", git_url="https://git.example.com/lab.git", git_server="gitea"))


def _gitea_glob(pattern: str) -> re.Pattern[str]:
    """Gitea's reading of one unprotected-file pattern: a glob whose separators are '/' and '.'
    (models/git/protected_branch.go, getFilePatterns): ``*`` stops at either, ``**`` does not."""
    out = ""
    for token in re.findall(r"\*\*|\*|\?|[^*?]+", pattern.lower()):
        out += {"**": ".*", "*": "[^/.]*", "?": "[^/.]"}.get(token, re.escape(token))
    return re.compile(out + r"\Z")


def test_main_takes_direct_pushes_of_everything_but_prod_and_the_base_it_builds_on():
    patterns = [_gitea_glob(p) for p in DIRECT_PUSH_FILES.split(";")]
    seeded = [p.relative_to(environments_template()).as_posix() for p in environments_template().rglob("*")]
    files = [f for f in seeded if (environments_template() / f).is_file()]
    guarded = [f for f in files if f.startswith(("overlays/prod/", "base/"))]
    free = [f for f in files if f not in guarded]
    assert guarded and free
    assert [f for f in guarded if any(p.match(f.lower()) for p in patterns)] == []
    assert [f for f in free if not any(p.match(f.lower()) for p in patterns)] == []

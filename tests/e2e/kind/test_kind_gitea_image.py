"""The kind bed's Gitea image runs as upstream's rootless image does: what the lab's Git server relies on.

The image the product names (docker.gitea.com/gitea:<version>-rootless, built by
the bed's gitea-image step, tests/kindbed/gitea_image.py) is started in the bed's
private dockerd with the settings a manifest gives it as GITEA__section__KEY
variables; everything is asked from inside the container (curl and git are in
the image), so no network or port is needed. Checked: the health endpoint, an
admin made with `gitea admin user create`, the settings applied to app.ini, the
web frontend served from the binary (the pages' /assets/ files answer), and a
clone over HTTP of a repository created through the API.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from kindbed import gitea_image, gitea_ui
from kindbed.layout import load_versions


ADMIN, PASSWORD = "lab-admin", "Lab-admin-pass-1"


@pytest.fixture(scope="module")
def gitea(kind_bed):
    name = f"gitops-lab-gitea-test-{uuid.uuid4().hex[:8]}"
    kind_bed.docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "-e",
        "GITEA__security__INSTALL_LOCK=true",
        "-e",
        "GITEA__database__DB_TYPE=sqlite3",
        "-e",
        "GITEA__server__ROOT_URL=http://localhost:3000/",
        gitea_image.image_ref(load_versions()),
    )

    def exec_(*args: str, check: bool = True) -> str:
        return kind_bed.docker("exec", name, *args, check=check)

    try:
        end = time.monotonic() + 120
        while (
            exec_(
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://localhost:3000/api/healthz", check=False
            )
            != "200"
        ):
            if time.monotonic() > end:
                raise AssertionError(
                    "Gitea did not answer /api/healthz within 120 s:\n" + kind_bed.docker("logs", name)
                )
            time.sleep(2)
        yield exec_
    finally:
        kind_bed.docker("rm", "-f", name, check=False)


def test_the_settings_given_as_environment_are_in_app_ini(gitea):
    ini = gitea("cat", "/etc/gitea/app.ini")
    assert re.search(r"^INSTALL_LOCK\s*=\s*true$", ini, re.M)
    assert re.search(r"^ROOT_URL\s*=\s*http://localhost:3000/$", ini, re.M)
    assert gitea("id", "-u").strip() == "1000"


def test_an_admin_made_with_the_cli_can_create_a_repository_and_clone_it_over_http(gitea):
    gitea(
        "gitea",
        "admin",
        "user",
        "create",
        "--admin",
        "--username",
        ADMIN,
        "--password",
        PASSWORD,
        "--email",
        "admin@example.com",
        "--must-change-password=false",
    )
    created = gitea(
        "curl",
        "-sf",
        "-u",
        f"{ADMIN}:{PASSWORD}",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"name": "lab", "auto_init": true}',
        "http://localhost:3000/api/v1/user/repos",
    )
    assert json.loads(created)["full_name"] == f"{ADMIN}/lab"
    gitea("git", "clone", "-q", f"http://{ADMIN}:{PASSWORD}@localhost:3000/{ADMIN}/lab.git", "/tmp/gitea/clone")
    assert "README.md" in gitea("ls", "/tmp/gitea/clone")


def test_the_home_page_loads_the_embedded_frontend(kind_bed, gitea):
    reason = gitea_ui.unavailable_reason(kind_bed.directory)
    if reason:
        pytest.skip(f"the kind bed's Gitea image has no frontend: {reason}")
    html = gitea("curl", "-sf", "http://localhost:3000/")
    assets = sorted(set(re.findall(r'"(/assets/(?:css|js)/[^"?]+\.(?:css|js))', html)))
    assert any(a.startswith("/assets/css/") for a in assets), html[:2000]
    assert any(a.startswith("/assets/js/") for a in assets), html[:2000]
    for asset in assets:
        answer = gitea(
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", f"http://localhost:3000{asset}"
        )
        status, size = answer.split()
        assert status == "200", asset
        assert int(size) > 1000, (asset, size)

"""The Argo CD UI on real kind, as a learner opens it: http://localhost:8443 in headless Chromium.

`gitops-lab up --engine argocd` on the kind bed, then Debian's chromium, driven by
playwright-core (argocd_ui_login.cjs), opens the address `up` printed, is sent to
the login form, logs in as admin with the password from argocd-initial-admin-secret,
and reads the applications list: dev, staging and prod. The screenshot of that list
is kept as a test artifact: ``$GITOPS_LAB_TEST_ARTIFACTS`` (default
``test-artifacts/`` in the repository, git-ignored) ``/argocd-ui-applications.png``.

Skipped, saying why, when the kind bed's Argo CD image has no UI (see
tests/kindbed/argocd_ui.py), when chromium is not installed (scripts/test installs
Debian's package), or when node is missing.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from helpers.artifacts import artifacts_dir
from helpers.browser import playwright_env

from kindbed import argocd_ui
from kindbed.fixtures import wait_for_free_lab_ports
from kindbed.layout import cache_root

NAME = "e2e-argocd-ui"
DRIVER = Path(__file__).with_name("argocd_ui_login.cjs")


@pytest.fixture(scope="module")
def browser(kind_bed) -> dict[str, str]:
    """The environment for the driver: Debian's chromium and playwright-core (npm, cached outside the repo)."""
    reason = argocd_ui.unavailable_reason(kind_bed.directory)
    if reason:
        pytest.skip(f"the kind bed's Argo CD image has no UI: {reason}")
    return playwright_env(cache_root())


@pytest.fixture(scope="module")
def argocd_lab(kind_bed, browser):
    wait_for_free_lab_ports()
    run = kind_bed.gitops_lab(
        "up",
        "--engine",
        "argocd",
        "--preload",
        "--engine-manifests",
        str(kind_bed.manifests),
        "--timeout",
        "900",
        "--output",
        "json",
        name=NAME,
    )
    yield kind_bed, run.json()
    kind_bed.gitops_lab("down", name=NAME, check=False)


def admin_password(bed) -> str:
    from kubernetes import client

    secret = client.CoreV1Api(bed.api(NAME)).read_namespaced_secret("argocd-initial-admin-secret", "argocd")
    assert secret.data is not None, "argocd-initial-admin-secret has no data"
    return base64.b64decode(secret.data["password"]).decode()


def ui_password(bed) -> str:
    """The password a learner is told to use: what `gitops-lab credentials` prints, which must be the Secret's."""
    login = bed.gitops_lab("credentials", "--output", "json", name=NAME).json()["argocd"]
    assert login == {"username": "admin", "password": admin_password(bed)}
    return login["password"]


def test_a_learner_logs_in_to_the_argocd_ui_and_sees_dev_staging_and_prod(argocd_lab, browser, request):
    bed, result = argocd_lab
    assert result["engine_ui"] == "http://localhost:8443"
    screenshot = artifacts_dir() / "argocd-ui-applications.png"
    screenshot.unlink(missing_ok=True)
    proc = subprocess.run(
        ["node", str(DRIVER), result["engine_ui"], "admin", ui_password(bed), str(screenshot)],
        env=browser,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"the browser could not log in and list the applications:\n{proc.stderr[-4000:]}"
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    request.node.user_properties.append(("screenshot", str(screenshot)))
    print(f"Argo CD UI screenshot: {screenshot}")
    assert "/login" in seen["login_url"]
    assert "/applications" in seen["url"]
    assert sorted(seen["applications"]) == ["gitops-lab-dev", "gitops-lab-prod", "gitops-lab-staging"]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

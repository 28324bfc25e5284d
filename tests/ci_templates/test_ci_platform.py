"""The learner's pipeline calls the platform repository (ml-platform-pipelines) across repositories, at a tag,
run for real: act for the GitHub reusable workflow, gitlab-ci-local for the GitLab component.

The tooling the jobs install is a wheel this project builds (pip with PIP_NO_INDEX:
nothing comes from a public index). Its dependencies are the runner's, as a
runner image would hold them (PIP_NO_DEPS): a folder on PYTHONPATH linking every
package of this interpreter's site-packages except gitops_lab itself, so the
jobs can only import gitops_lab from the wheel.

How each tool reaches the platform repository, which sits on a local Git
"server" (a folder of bare repositories, as the lab's Git server serves them):

- act clones a remote reusable workflow from `$GITHUB_SERVER_URL/OWNER/REPO` at
  the ref in `uses:`; the test sets GITHUB_SERVER_URL to `file://<server root>`,
  so act itself fetches ml-platform/ml-platform-pipelines at the tag, as it
  would from github.com. The workflow's own runner-config job clones the same
  URL for runners.yml.
  act also fetches every action a job names before the job starts, even a step
  whose `if:` skips it. The steps that need GitHub's hosted services
  (setup-python, upload- and download-artifact) are skipped under act
  (`if: ${{ !env.ACT }}`: act's host runner is the Python, and the artifacts
  go through a folder named by ML_PIPELINE_HANDOFF instead, since act has no
  artifact service without those actions); the test maps each of
  them, at its pinned SHA, with `--local-repository` to a placeholder action
  that fails if it is ever run.
- gitlab-ci-local resolves `include: project:` by cloning
  `<scheme>://<host>:<port>/<project>.git` at `ref:`, where scheme, host and port
  come from the working copy's `gcl-origin` remote (else `origin`). The test
  serves the Git server's folder over smart HTTP (`git http-backend`,
  tests/helpers/gitservers.py) and sets gcl-origin to `http://127.0.0.1:PORT/learner/lab.git`,
  so gitlab-ci-local clones ml-platform/ml-platform-pipelines at the tag from it.
  For `include: component:` gitlab-ci-local 4.60 first asks whether the
  component's file exists through GitLab's raw-file route
  (`/OWNER/REPO/-/raw/REF/PATH`), then fetches it as a project include; the
  test server answers that route from the repository at the ref. Both forms run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO
from helpers.ci_tools import act_push, tool
from helpers.gitutil import git
from helpers.osvdb import build_osv_db
from helpers.renderer import needs_kustomize
from helpers.segment_gate import V6_FAILS, require_segment_gate

from gitops_lab.adapters.repo.platform import PLATFORM_REPOSITORY, seed_platform
from gitops_lab.gates.vuln_scan import DB_VAR
from gitops_lab.pipeline.stages import STAGES

REPO_ROOT = REPO
TOOL_TIMEOUT = 900  # a whole pipeline on 2 shared cores; bounds a hung tool, nothing asserts time
OWNER = "ml-platform"

GITHUB_CALLER = """\
name: ci
on:
  push:
jobs:
  pipeline:
    uses: ml-platform/ml-platform-pipelines/.github/workflows/ml-pipeline.yml@{ref}
    with:
      tooling-source: ${{{{ vars.GITOPS_LAB_TOOLING }}}}
      model-server-url: ${{{{ vars.MODEL_SERVER_URL }}}}
      stages: ${{{{ vars.PIPELINE_STAGES || 'all' }}}}
    secrets: inherit
"""


@pytest.fixture(autouse=True)
def offline_advisories(tmp_path, monkeypatch) -> str:
    """The security stage's vuln-scan (where osv-scanner is installed) reads the tests' real OSV subset,
    not api.osv.dev; both tools are given it explicitly."""
    db = str(build_osv_db(tmp_path / "osv-db"))
    monkeypatch.setenv(DB_VAR, db)
    return f"{DB_VAR}={db}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this project, built once: what `tooling-source` points at."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO_ROOT),
        ],
        check=True,
        timeout=TOOL_TIMEOUT,
    )
    [built] = out.glob("gitops_lab-*.whl")
    return built


@pytest.fixture(scope="module")
def tooling(wheel, runner_packages) -> tuple[Path, Path]:
    return wheel, runner_packages


@pytest.fixture
def server(lab, tmp_path) -> Path:
    """A folder of bare repositories, OWNER/REPO, holding the platform repository at v1.0.0."""
    root = tmp_path / "git-server"
    platform = root / OWNER / f"{PLATFORM_REPOSITORY}.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(platform)], check=True)
    seed_platform(str(platform))
    # act asks for OWNER/REPO (GitHub's spelling), gitlab-ci-local for OWNER/REPO.git: one repository, two names.
    (root / OWNER / PLATFORM_REPOSITORY).symlink_to(platform)
    return root


@pytest.fixture(scope="module")
def runner_packages(tmp_path_factory) -> Path:
    """The runner's preinstalled dependencies: this interpreter's packages, gitops_lab left out."""
    import sysconfig

    folder = tmp_path_factory.mktemp("runner-site-packages")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "gitops_lab" not in entry.name and entry.suffix != ".pth":
            (folder / entry.name).symlink_to(entry)
    return folder


def runner_env(packages: Path) -> dict[str, str]:
    # The runner's python3 is this interpreter's; the tooling comes from the wheel only.
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(packages),
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
    }


SKIPPED_UNDER_ACT = ("actions/setup-python", "actions/upload-artifact", "actions/download-artifact")


def placeholders(tmp: Path, server_url: str) -> list[str]:
    """--local-repository for each action the workflow skips under act, at the SHA it pins."""
    import re

    folder = tmp / "skipped-under-act"
    folder.mkdir(exist_ok=True)
    (folder / "action.yml").write_text(
        "name: skipped under act\nruns:\n  using: composite\n  steps:\n"
        '    - run: "echo this step must be skipped under act >&2; exit 1"\n      shell: sh\n'
    )
    text = (REPO_ROOT / "platform" / ".github" / "workflows" / "ml-pipeline.yml").read_text()
    args = []
    for action in SKIPPED_UNDER_ACT:
        for sha in sorted(set(re.findall(rf"{action}@([0-9a-f]{{40}})", text))):
            # act keys the mapping by the action's full URL under GITHUB_SERVER_URL.
            args += ["--local-repository", f"{server_url}/{action}@{sha}={folder}"]
    return args


def act(
    wc: Path, server: Path, tooling: tuple[Path, Path], model_server: str = "", stages: str = "all"
) -> subprocess.CompletedProcess:
    wheel, packages = tooling
    args = [
        *act_push(*placeholders(server.parent, f"file://{server}")),
        "--env",
        f"GITHUB_SERVER_URL=file://{server}",
        "--env",
        f"ML_PIPELINE_HANDOFF={server.parent / 'handoff'}",
        "--env",
        "PIP_NO_INDEX=1",
        "--env",
        "PIP_NO_DEPS=1",
        "--env",
        f"{DB_VAR}={os.environ[DB_VAR]}",
        "--var",
        f"GITOPS_LAB_TOOLING={wheel}",
        "--var",
        f"MODEL_SERVER_URL={model_server}",
        "--var",
        f"PIPELINE_STAGES={stages}",
    ]
    # act's own cache of cloned workflows and actions, per test: a re-seeded tag is never read stale.
    env = {**runner_env(packages), "XDG_CACHE_HOME": str(server.parent / "act-cache")}
    return subprocess.run(args, cwd=wc, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT)


def set_dev(wc: Path, version: str) -> None:
    path = wc / "overlays" / "dev" / "kustomization.yaml"
    path.write_text(
        path.read_text().replace("gitops-lab.io/model-version: v2", f"gitops-lab.io/model-version: {version}")
    )
    git(wc, "commit", "-qam", f"Try {version} in dev")


@pytest.fixture
def github_caller(lab) -> Path:
    wc, _ = lab
    (wc / ".github" / "workflows").mkdir(parents=True)  # the seed has no CI file of its own
    (wc / ".github" / "workflows" / "ci.yml").write_text(GITHUB_CALLER.format(ref="v1.0.0"))
    git(wc, "add", "-A")
    git(wc, "commit", "-qm", "Call the platform pipeline at v1.0.0")
    return wc


def verdicts(out: str) -> dict[str, str]:
    """Each stage's closing line, `STAGE name: pass|FAIL|skipped`, in the order the stages ran."""
    import re

    return {m[1]: m[2].lower() for m in re.finditer(r"STAGE ([a-z-]+): (pass|FAIL|skipped)\b", out)}


@needs_kustomize
def test_github_caller_runs_the_platform_workflow_green_on_v2_and_verifies_the_served_model(
    github_caller, server, tooling, start_server
):
    served = start_server("v2")
    result = act(github_caller, server, tooling, f"http://127.0.0.1:{served.port}")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert verdicts(out) == {stage: "pass" for stage in STAGES}, out[-5000:]
    assert "dev serving v2 passes verification" in out


@needs_kustomize
def test_github_caller_is_red_at_data_validation_on_v3(github_caller, server, tooling):
    set_dev(github_caller, "v3")
    result = act(github_caller, server, tooling)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert verdicts(out) == {"data-preparation": "pass", "data-validation": "fail"}, out[-5000:]
    assert "temperature_c drift" in out


@needs_kustomize
def test_github_caller_is_red_on_v4_at_integration_and_at_release_verification_without_it(
    github_caller, server, tooling, start_server
):
    """v4 serves other answers than training recorded: the integration tests see it first; with them left out,
    release verification of the served model does."""
    set_dev(github_caller, "v4")
    result = act(github_caller, server, tooling)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    before = ["data-preparation", "data-validation", "training", "unit-tests"]
    assert verdicts(out) == {**dict.fromkeys(before, "pass"), "integration-tests": "fail"}, out[-5000:]
    assert "/predict gives the known answers" in out

    served = start_server("v4")
    rest = ",".join(stage for stage in STAGES if stage != "integration-tests")
    result = act(github_caller, server, tooling, f"http://127.0.0.1:{served.port}", stages=rest)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    expected = {stage: "pass" for stage in STAGES} | {"integration-tests": "skipped", "release": "fail"}
    assert verdicts(out) == expected, out[-5000:]
    assert "dev serving v4 failed verification: accuracy" in out


GITLAB_CALLER = """\
include:
  - component: $CI_SERVER_FQDN/ml-platform/ml-platform-pipelines/ml-pipeline@{ref}
    inputs:
      tooling-source: $GITOPS_LAB_TOOLING
      stages: $PIPELINE_STAGES
"""
GITLAB_PROJECT_CALLER = """\
include:
  - project: ml-platform/ml-platform-pipelines
    ref: {ref}
    file: templates/ml-pipeline.yml
    inputs:
      tooling-source: $GITOPS_LAB_TOOLING
      stages: $PIPELINE_STAGES
"""


@pytest.fixture
def gitlab_caller(lab, server):
    from helpers.gitservers import git_server

    wc, _ = lab
    with git_server("http", server, read_only=True) as http:
        (wc / ".gitlab-ci.yml").write_text(GITLAB_CALLER.format(ref="v1.0.0"))
        git(wc, "add", "-A")
        git(wc, "commit", "-qm", "Include the platform pipeline at v1.0.0")
        git(wc, "remote", "add", "gcl-origin", http.url("learner/lab.git"))
        yield wc


def gitlab(wc: Path, tooling: tuple[Path, Path], model_server: str = "", stages: str = "all"):
    wheel, packages = tooling
    args = [tool("gitlab-ci-local"), "--force-shell-executor", "--no-color"]
    for variable in (
        f"GITOPS_LAB_TOOLING={wheel}",
        f"MODEL_SERVER_URL={model_server}",
        f"PIPELINE_STAGES={stages}",
        f"{DB_VAR}={os.environ[DB_VAR]}",
    ):
        args += ["--variable", variable]
    return subprocess.run(args, cwd=wc, env=runner_env(packages), capture_output=True, text=True, timeout=TOOL_TIMEOUT)


@needs_kustomize
def test_gitlab_caller_runs_the_platform_component_green_on_v2_and_verifies_the_served_model(
    gitlab_caller, tooling, start_server
):
    served = start_server("v2")
    result = gitlab(gitlab_caller, tooling, f"http://127.0.0.1:{served.port}")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert verdicts(out) == {stage: "pass" for stage in STAGES}, out[-5000:]
    assert "dev serving v2 passes verification" in out
    fetched = gitlab_caller / ".gitlab-ci-local" / "includes" / "127.0.0.1" / OWNER / PLATFORM_REPOSITORY / "v1.0.0"
    assert (fetched / "templates" / "ml-pipeline.yml").is_file()  # cloned from the server at the tag
    junit = gitlab_caller / ".gitlab-ci-local" / "artifacts" / "ml-pipeline-release" / "ci-artifacts" / "junit"
    assert sorted(p.stem for p in junit.glob("*.xml")) == sorted(STAGES), out[-3000:]


@needs_kustomize
@pytest.mark.parametrize("caller", [GITLAB_CALLER, GITLAB_PROJECT_CALLER], ids=["component", "project"])
def test_gitlab_caller_is_red_at_data_validation_on_v3(gitlab_caller, tooling, caller):
    (gitlab_caller / ".gitlab-ci.yml").write_text(caller.format(ref="v1.0.0"))
    set_dev(gitlab_caller, "v3")
    result = gitlab(gitlab_caller, tooling)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert verdicts(out) == {"data-preparation": "pass", "data-validation": "fail"}, out[-5000:]
    assert "temperature_c drift" in out


@needs_kustomize
def test_gitlab_caller_is_red_on_v4_at_integration_and_at_release_verification_without_it(
    gitlab_caller, tooling, start_server
):
    set_dev(gitlab_caller, "v4")
    result = gitlab(gitlab_caller, tooling)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    before = ["data-preparation", "data-validation", "training", "unit-tests"]
    assert verdicts(out) == {**dict.fromkeys(before, "pass"), "integration-tests": "fail"}, out[-5000:]

    served = start_server("v4")
    rest = ",".join(stage for stage in STAGES if stage != "integration-tests")
    result = gitlab(gitlab_caller, tooling, f"http://127.0.0.1:{served.port}", stages=rest)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    expected = {stage: "pass" for stage in STAGES} | {"integration-tests": "skipped", "release": "fail"}
    assert verdicts(out) == expected, out[-5000:]
    assert "dev serving v4 failed verification: accuracy" in out


def test_a_caller_of_a_tag_the_platform_never_released_fails_in_both_tools(
    github_caller, gitlab_caller, server, tooling
):
    for path, old in ((".github/workflows/ci.yml", "@v1.0.0"), (".gitlab-ci.yml", "@v1.0.0")):
        target = gitlab_caller / path
        target.write_text(target.read_text().replace(old, old.replace("v1.0.0", "v9.9.9")))
    git(gitlab_caller, "commit", "-qam", "Call an unreleased tag")
    result = act(gitlab_caller, server, tooling)
    assert result.returncode != 0 and "v9.9.9" in result.stdout + result.stderr
    assert verdicts(result.stdout) == {}
    result = gitlab(gitlab_caller, tooling)
    assert result.returncode != 0 and "ml-pipeline@v9.9.9" in result.stdout + result.stderr
    assert verdicts(result.stdout) == {}


@needs_kustomize
def test_v6_is_red_at_evaluation_in_both_tools_once_the_team_requires_its_segment_gate(
    github_caller, gitlab_caller, server, tooling
):
    """v6 is good overall and bad on cool pumps: the platform's evaluation stage runs the custom gates the
    caller's gates.yaml requires, so both pipelines stop there, naming the segment."""
    set_dev(gitlab_caller, "v6")
    require_segment_gate(gitlab_caller)
    through = "data-preparation,data-validation,training,evaluation"
    expected = {
        **dict.fromkeys(["data-preparation", "data-validation", "training"], "pass"),
        **dict.fromkeys(["unit-tests", "integration-tests"], "skipped"),
        "evaluation": "fail",
    }
    for name, result in (
        ("act", act(gitlab_caller, server, tooling, stages=through)),
        ("gitlab-ci-local", gitlab(gitlab_caller, tooling, stages=through)),
    ):
        out = result.stdout + result.stderr
        assert result.returncode != 0, f"{name}: {out[-5000:]}"
        assert verdicts(out) == expected, f"{name}: {out[-5000:]}"
        assert V6_FAILS in out, f"{name}: {out[-5000:]}"

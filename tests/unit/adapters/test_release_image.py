"""The release automation's image (adapters/release_image.py): what goes into it, without Docker."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from gitops_lab.adapters import release_image
from gitops_lab.adapters.release_image import BaseImage, ImageContents, assemble, dockerfile, linux_binary
from gitops_lab.errors import PreflightError
from gitops_lab.reporter import Reporter

SLIM = BaseImage("docker.io/library/python:3.12.14-slim", "3.12", "x86_64", has_git=False)
WITH_GIT = BaseImage("python:3.12.14-slim", "3.11", "x86_64", has_git=True)


def _elf(path: Path, machine: int) -> Path:
    path.write_bytes(b"\x7fELF" + bytes(14) + machine.to_bytes(2, "little") + bytes(40))
    return path


def _wheel(folder: Path) -> Path:
    wheel = folder / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/__init__.py", "VALUE = 1\n")
        archive.writestr("demo-1.0.data/purelib/demo_extra.py", "EXTRA = 2\n")
        archive.writestr("demo-1.0.data/scripts/demo", "#!/bin/sh\n")
        archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\n")
    return wheel


def test_the_context_holds_the_package_its_data_and_the_unpacked_wheels(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    digest = assemble(context, SLIM, ImageContents([_wheel(tmp_path)]))
    site = context / "site"
    assert (site / "demo" / "__init__.py").read_text() == "VALUE = 1\n"
    assert (site / "demo_extra.py").is_file()  # .data/purelib lands in site-packages
    assert not (site / "demo").joinpath("..", "demo-1.0.data").exists()
    assert (site / "gitops_lab" / "incluster.py").is_file()
    assert (site / "gitops_lab" / "_data" / "manifests" / "release-automation" / "deployment.yaml").is_file()
    assert not list(site.rglob("__pycache__"))
    assert f'gitops-lab.io/content="{digest}"' in (context / "Dockerfile").read_text()


def test_the_digest_changes_with_what_goes_in(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    assert assemble(one, SLIM, ImageContents([])) == assemble(two, SLIM, ImageContents([]))
    three = tmp_path / "three"
    three.mkdir()
    assert assemble(three, SLIM, ImageContents([_wheel(tmp_path)])) != assemble(one, SLIM, ImageContents([]))


def test_git_is_installed_only_where_the_base_lacks_it_and_the_process_runs_unprivileged():
    slim = dockerfile(SLIM, {}, "d")
    assert "apt-get install -y --no-install-recommends git" in slim
    assert "apt-get" not in dockerfile(WITH_GIT, {}, "d")
    assert "USER 65532:65532" in slim
    assert 'ENTRYPOINT ["python3", "-m", "gitops_lab.incluster"]' in slim
    assert "COPY tools/" not in slim and "COPY tools/" in dockerfile(SLIM, {"kubectl": Path("k")}, "d")


def test_only_a_linux_binary_for_the_images_machine_is_carried(tmp_path, monkeypatch):
    amd64 = _elf(tmp_path / "kustomize", 62)
    assert linux_binary(amd64, "x86_64") and not linux_binary(amd64, "aarch64")
    macho = tmp_path / "kubectl"
    macho.write_bytes(b"\xcf\xfa\xed\xfe" + bytes(40))
    assert not linux_binary(macho, "x86_64")

    monkeypatch.setattr(release_image, "found_renderer", lambda: f"{macho} kustomize")
    tools, notes = release_image.renderer_tool("x86_64")
    assert tools == {} and "is not a Linux x86_64 binary, so the image has no renderer" in notes[0]
    monkeypatch.setattr(release_image, "found_renderer", lambda: f"{amd64} build")
    assert release_image.renderer_tool("x86_64") == ({"kustomize": amd64}, [])
    monkeypatch.setattr(release_image, "found_renderer", lambda: None)
    assert "neither kustomize nor kubectl" in release_image.renderer_tool("x86_64")[1][0]


def test_a_wheels_folder_named_by_the_user_is_used_as_is_and_an_empty_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(release_image.WHEELS_VAR, str(tmp_path))
    with pytest.raises(PreflightError) as refused:
        release_image.wheels_for("3.12", "x86_64", Reporter())
    assert "holds no wheels" in refused.value.message
    wheel = _wheel(tmp_path)
    assert release_image.wheels_for("3.12", "x86_64", Reporter()) == [wheel]


def test_the_requirements_are_the_packages_runtime_ones():
    found = release_image.requirements()
    assert any(r.startswith("kubernetes") for r in found)
    assert not any("extra ==" in r for r in found)


def test_a_failed_download_is_one_line_naming_pips_reason_and_leaves_the_folder_unmarked(tmp_path, monkeypatch):
    import subprocess

    failed = subprocess.CompletedProcess(
        [], 1, "", "Collecting x\nERROR: No matching distribution found for pyyaml>=6\n"
    )
    monkeypatch.setattr(release_image, "run_bounded", lambda command, timeout: failed)
    with pytest.raises(PreflightError) as refused:
        release_image.download_wheels("3.12", "x86_64", tmp_path / "wheels")
    assert refused.value.message.endswith("ERROR: No matching distribution found for pyyaml>=6")
    assert "GITOPS_LAB_WHEELS" in (refused.value.fix or "")
    assert not (tmp_path / "wheels" / ".complete").exists()  # the next `up` downloads again

"""The kind bed's Gitea steps: the frontend's tools as Gitea's package.json names them, the copy of
the module built under the path its packages import, and the image's name kept to versions.yaml.

The build itself and the image are exercised by tests/e2e/kind/test_kind_gitea_image.py (marked kind).
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from kindbed import gitea_image, gitea_ui, steps
from kindbed.layout import load_versions
from testbed import build as testbed_build


def test_pnpm_is_the_version_package_json_names(tmp_path):
    (tmp_path / "package.json").write_text(json.dumps({"packageManager": "pnpm@11.9.0+sha512.abc"}))
    assert gitea_ui.pnpm_version(tmp_path) == "11.9.0"


def test_a_package_json_without_pnpm_stops_the_build_with_what_to_update(tmp_path):
    (tmp_path / "package.json").write_text(json.dumps({"packageManager": "yarn@4.0.0"}))
    with pytest.raises(SystemExit, match="names no pnpm packageManager.*gitea_ui.py"):
        gitea_ui.pnpm_version(tmp_path)


def test_without_npm_the_step_records_why_and_builds_no_frontend(tmp_path, monkeypatch):
    monkeypatch.setattr(gitea_ui.shutil, "which", lambda name: None)
    monkeypatch.setattr(gitea_ui, "module_dir", lambda module, version: _module_with_package_json(tmp_path))
    gitea_ui.build(tmp_path / "bed", load_versions(), 1, lambda msg: None)
    assert "npm" in (gitea_ui.unavailable_reason(tmp_path / "bed") or "")
    assert not gitea_ui.binary(tmp_path / "bed").exists()
    assert all((tmp_path / "bed" / f).exists() for f in gitea_ui.expected_files(load_versions()))


def _module_with_package_json(tmp_path):
    module = tmp_path / "module"
    module.mkdir(exist_ok=True)
    (module / "package.json").write_text(json.dumps({"packageManager": "pnpm@11.9.0"}))
    return module


def test_the_copy_of_the_module_replaces_the_path_its_packages_import(tmp_path):
    """gitea.dev (the path Gitea's go.mod declares) must come from the copy holding the frontend."""
    moddir = tmp_path / "gitea@v1.27.3"
    moddir.mkdir()
    (moddir / "go.mod").write_text("module gitea.dev\n\ngo 1.26\n")
    gitea = next(c for c in testbed_build.components() if c.name == "gitea")
    copy = dataclasses.replace(gitea, source_dir=str(tmp_path / "copy"))
    gomod = testbed_build.Builder(1, False, tmp_path).wrapper_gomod(copy, moddir)
    assert f"replace gitea.dev => {tmp_path / 'copy'}\n" in gomod
    assert "code.gitea.io/gitea" not in gomod.split("require", 1)[1]
    # the testbed's own build is unchanged: the proxy's module under gitea.dev
    plain = testbed_build.Builder(1, False, tmp_path).wrapper_gomod(gitea, moddir)
    assert f"replace gitea.dev => code.gitea.io/gitea {gitea.version}\n" in plain


def test_the_image_the_product_names_is_left_to_the_gitea_steps(tmp_path, monkeypatch):
    ref = gitea_image.image_ref(load_versions())
    monkeypatch.setattr(steps, "lab_image_refs", lambda d: [ref, "docker.io/library/python:3.12.14-slim"])
    assert steps.lab_images(tmp_path) == {"docker.io/library/python:3.12.14-slim": "git-and-python"}
    assert any(ref in step.images for step in steps.image_steps())


def test_another_gitea_tag_than_versions_yaml_gives_fails_the_build(tmp_path, monkeypatch):
    monkeypatch.setattr(steps, "lab_image_refs", lambda d: ["docker.gitea.com/gitea:1.26.0-rootless"])
    with pytest.raises(SystemExit, match="1.26.0-rootless.*builds Gitea as docker.gitea.com/gitea:1.27.3-rootless"):
        steps.lab_images(tmp_path)

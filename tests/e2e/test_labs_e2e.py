"""Every shipped lab end to end on the testbed, for Argo CD and for Flux.

`gitops-lab lab test --all --engine E --junit FILE` must pass: for each step,
setup, the check fails, the solution runs, the check passes; then the lab is
reset and its start state verified. The JUnit file must list every step of
every lab (and each lab's reset) as a passed testcase.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from gitops_lab.labs.loader import discover, load_lab
from gitops_lab.resources import labs_dir


pytestmark = pytest.mark.testbed


def test_every_lab_passes_and_junit_lists_every_step(engine_on_testbed, tmp_path):
    engine, cli = engine_on_testbed.engine, engine_on_testbed.cli
    up = engine_on_testbed.up()
    assert up.exit_code == 0, up.output
    junit = tmp_path / f"labs-{engine}.xml"
    result = cli(
        "lab", "test", "--all", "--engine", engine, "--junit", str(junit), "--timeout", "180", "--output", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["passed"] is True

    expected = []
    for folder in discover(labs_dir()):
        lab = load_lab(folder)
        expected += [(f"labs.{lab.id}", step.id) for step in lab.steps] + [(f"labs.{lab.id}", "reset")]
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert sorted((c.get("classname"), c.get("name")) for c in cases) == sorted(expected)
    assert not root.findall(".//failure")
    # Labs and steps that need model-server pods that answer (verification) skip on the testbed's
    # simulated pods, saying why; they run on the kind bed (tests/e2e/test_kind_e2e.py). Nothing else skips.
    needs_pods = set()
    for folder in discover(labs_dir()):
        lab = load_lab(folder)
        needs_pods |= {
            (f"labs.{lab.id}", step.id) for step in lab.steps if "running-pods" in lab.requires + step.requires
        }
        needs_pods |= {(f"labs.{lab.id}", "reset")} if "running-pods" in lab.requires else set()
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert {(c.get("classname"), c.get("name")) for c in skipped} == needs_pods
    assert all("needs model-server pods that run and answer" in c.find("skipped").get("message") for c in skipped)
    assert {p.get("value") for p in root.findall(".//property[@name='engine']")} == {engine}

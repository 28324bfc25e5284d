"""Every shipped lab end to end on the testbed, for Argo CD and for Flux.

`gitops-lab lab test --all --engine E --junit FILE` must pass: for each step,
setup, the check fails, the solution runs, the check passes; then the lab is
reset and its start state verified. The JUnit file must list every step of
every lab (and each lab's reset) as a passed testcase.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from helpers.osvdb import build_osv_db

from gitops_lab.gates.vuln_scan import DB_VAR, find_scanner
from gitops_lab.labs.loader import discover, load_lab
from gitops_lab.resources import labs_dir


def test_every_lab_passes_and_junit_lists_every_step(engine_on_testbed, tmp_path, monkeypatch):
    engine, cli = engine_on_testbed.engine, engine_on_testbed.cli
    # The vuln-scan gate's advisories: the real OSV subset of the tests, offline (tests/testdata/osv).
    monkeypatch.setenv(DB_VAR, str(build_osv_db(tmp_path / "osv-db")))
    up = engine_on_testbed.up()
    assert up.exit_code == 0, up.output
    junit = tmp_path / f"labs-{engine}.xml"
    # With lab test's default --timeout: one deadline for the whole run, as CI and the kind e2e run it.
    result = cli("lab", "test", "--all", "--engine", engine, "--junit", str(junit), "--output", "json")
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
    # simulated pods, saying why; they run on the kind bed (tests/e2e/kind/test_kind_e2e.py). Nothing else skips.
    needs_pods = set()
    for folder in discover(labs_dir()):
        lab = load_lab(folder)
        needs_pods |= {
            (f"labs.{lab.id}", step.id) for step in lab.steps if "running-pods" in lab.requires + step.requires
        }
        needs_pods |= {(f"labs.{lab.id}", "reset")} if "running-pods" in lab.requires else set()
    # Labs that need osv-scanner skip, saying so, where scripts/install-ci-tools has not built it.
    needs_scanner = set()
    if find_scanner() is None:
        for folder in discover(labs_dir()):
            lab = load_lab(folder)
            if "osv-scanner" in lab.requires:
                needs_scanner |= {(f"labs.{lab.id}", step.id) for step in lab.steps} | {(f"labs.{lab.id}", "reset")}
    # Steps that need a forge (pull requests) skip on the testbed's plain Git server, saying so; they run on
    # Gitea (tests/e2e/testbed/test_design_review_lab_forge.py, tests/e2e/kind/test_kind_gitea_e2e.py).
    needs_forge = set()
    for folder in discover(labs_dir()):
        lab = load_lab(folder)
        needs_forge |= {(f"labs.{lab.id}", step.id) for step in lab.steps if "forge" in lab.requires + step.requires}
    assert needs_forge, "no lab step needs a forge: drop this part of the test"
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert {(c.get("classname"), c.get("name")) for c in skipped} == needs_pods | needs_scanner | needs_forge
    for case in skipped:
        key = (case.get("classname"), case.get("name"))
        why = (
            "needs osv-scanner"
            if key in needs_scanner
            else "needs a forge (Gitea)"
            if key in needs_forge
            else "needs model-server"
        )
        assert why in case.find("skipped").get("message")
    assert {p.get("value") for p in root.findall(".//property[@name='engine']")} == {engine}

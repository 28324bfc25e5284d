"""A promotion reuses a gate's pass when the same gate already passed on the same inputs.

Inputs are content: the tree (or commit) the gate reads, the promotion, the
gate's gates.yaml section, the tools. A reused verdict says so; a gate whose
inputs changed runs again, and `--rerun-gates` runs every gate.
"""

from __future__ import annotations

from pathlib import Path

from helpers.gitutil import git, last_trailers, remote_version
from helpers.renderer import needs_kustomize

pytestmark = needs_kustomize

STAGING_GATES = ("data-quality", "model-eval", "policy")


def promote_v2(cli, wc: Path, *more: str):
    result = cli("promote", "--to", "staging", "--version", "v2", "--repo", str(wc), *more)
    assert result.exit_code == 0, result.output
    assert remote_version_of(wc) == "v2"
    return result


def remote_version_of(wc: Path) -> str:
    return remote_version(wc / ".." / "remote.git", "staging")


def back_to_v1(cli, wc: Path) -> None:
    """Staging back on v1 by a rollback: a new commit whose tree is the one the first promotion judged."""
    result = cli("rollback", "--env", "staging", "--repo", str(wc))
    assert result.exit_code == 0, result.output


def reused(result) -> list[str]:
    line = next(line for line in result.stderr.splitlines() if "gates for staging:" in line)
    return [name for name in STAGING_GATES if f"{name} pass (reused" in line]


def test_the_same_inputs_reuse_the_pass_and_say_so(lab, cli):
    wc, remote = lab
    first = promote_v2(cli, wc)
    assert reused(first) == []
    back_to_v1(cli, wc)
    second = promote_v2(cli, wc)
    assert reused(second) == list(STAGING_GATES)
    # The commit still carries every verdict.
    assert [t.split(":")[0] for t in last_trailers(remote)[-3:]] == [
        "Gate-Data-Quality",
        "Gate-Model-Eval",
        "Gate-Policy",
    ]


def test_rerun_gates_runs_them_all(lab, cli):
    wc, _ = lab
    promote_v2(cli, wc)
    back_to_v1(cli, wc)
    assert reused(promote_v2(cli, wc, "--rerun-gates")) == []


def test_a_gate_whose_input_changed_runs_again_and_can_fail(lab, cli):
    wc, remote = lab
    promote_v2(cli, wc)
    back_to_v1(cli, wc)
    # The same promotion, but staging's overlay now asks for a privileged container: policy must see it.
    overlay = wc / "overlays" / "staging"
    (overlay / "privileged.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: model-server\nspec:\n  template:\n    spec:\n"
        "      containers:\n        - name: model-server\n          securityContext:\n            privileged: true\n"
    )
    kustomization = overlay / "kustomization.yaml"
    assert "patches:" not in kustomization.read_text()
    with kustomization.open("a") as out:
        out.write("\npatches:\n  - path: privileged.yaml\n")
    git(wc, "add", "-A")
    git(wc, "commit", "--quiet", "-m", "Staging runs privileged")
    git(wc, "push", "--quiet", "origin", "main")
    result = cli("promote", "--to", "staging", "--version", "v2", "--repo", str(wc))
    assert result.exit_code == 4, result.output
    assert "policy (" in result.stderr and "privileged" in result.stderr
    assert remote_version(remote, "staging") == "v1"


def test_a_changed_gate_setting_runs_that_gate_again(lab, cli):
    wc, _ = lab
    promote_v2(cli, wc)
    back_to_v1(cli, wc)
    gates = wc / "gates.yaml"
    gates.write_text(gates.read_text().replace("min_score: null", "min_score: 0.99"))
    git(wc, "commit", "--quiet", "-am", "Raise the bar")
    git(wc, "push", "--quiet", "origin", "main")
    result = cli("promote", "--to", "staging", "--version", "v2", "--repo", str(wc))
    assert result.exit_code == 4, result.output
    assert "model-eval (accuracy" in result.stderr and "< 0.99" in result.stderr


def test_a_gate_run_before_the_promotion_is_reused_by_it(lab, cli):
    wc, _ = lab
    ran = cli("gate", "run", "--to", "staging", "--version", "v2", "--repo", str(wc))
    assert ran.exit_code == 0, ran.output
    assert reused(promote_v2(cli, wc)) == list(STAGING_GATES)

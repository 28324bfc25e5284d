"""Check of the custom-gates lab: the gates on the pushed branch block v6 and let v2 through.

The gates run on a checkout of the pushed branch, exactly as `gitops-lab gate
run` would there: a gate that is declared but not pushed, not required for
staging, or that blocks every version does not pass.
"""

from __future__ import annotations

import tempfile

BUILT_IN_MODEL_GATES = ("data-quality", "model-eval")


def segment_gate_blocks_v6(ctx):
    from gitops_lab.errors import GitOpsLabError
    from gitops_lab.gates import load_config, run_gates

    ref = ctx.pushed()
    with tempfile.TemporaryDirectory(prefix="gitops-lab-gates-") as tmp:
        ctx.git.run("worktree", "add", "--detach", "--quiet", tmp, ref)
        try:
            try:
                config = load_config(tmp)
            except GitOpsLabError as error:
                return False, f"gates.yaml on the pushed branch: {error.one_line()}"
            required = config.required_for("staging")
            mine = [g for g in required if g in config.custom]
            if not mine:
                return False, (
                    "gates.yaml on the pushed branch requires no custom gate for staging "
                    f"(required.staging: {', '.join(required) or 'none'})"
                )
            dropped = [g for g in BUILT_IN_MODEL_GATES if g not in required]
            if dropped:
                return False, f"staging no longer requires {', '.join(dropped)}: add your gate beside them"
            v6 = run_gates(tmp, "dev", "staging", "v6", only=mine)
            v2 = run_gates(tmp, "dev", "staging", "v2", only=mine)
        finally:
            ctx.git.run("worktree", "remove", "--force", tmp, check=False)
    blocking = [r for r in v6 if not r.passed]
    if not blocking:
        shown = "; ".join(f"{r.name}: {r.summary}" for r in v6)
        return False, f"your custom gates let v6 through ({shown}): judge accuracy per temperature band"
    refusing = [r for r in v2 if not r.passed]
    if refusing:
        shown = "; ".join(f"{r.name}: {r.summary}" for r in refusing)
        return False, f"your custom gates also block v2, which is good on every segment ({shown})"
    return True, f"{', '.join(r.name for r in blocking)} blocks v6 and passes v2"

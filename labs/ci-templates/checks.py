"""Checks of the CI-template lab: run the pipeline's stages on the pushed tree.

The stages are the ones both templates run (ci/run-stage), in the templates'
order; a failing stage stops the ones after it, as in GitHub Actions (needs:)
and GitLab CI (stages:).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = ("unit", "data", "train", "evaluate", "security", "release")


def run_pipeline(ctx) -> list[tuple[str, int, str]]:
    """(stage, exit code, last output line) of each stage that ran, on a checkout of the pushed branch."""
    ref = ctx.pushed()
    # gitops-lab and the model package, from where this gitops-lab runs.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("GITOPS_LAB_KUBECONFIG", None)
    ran = []
    with tempfile.TemporaryDirectory(prefix="gitops-lab-ci-") as tmp:
        ctx.git.run("worktree", "add", "--detach", "--quiet", tmp, ref)
        try:
            for stage in STAGES:
                proc = subprocess.run(["sh", "ci/run-stage", stage], cwd=tmp, env=env, capture_output=True,
                                      text=True, timeout=600)
                lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
                ran.append((stage, proc.returncode, lines[-1] if lines else ""))
                if proc.returncode != 0:
                    break
        finally:
            ctx.git.run("worktree", "remove", "--force", tmp, check=False)
    return ran


def pipeline(ctx, expect: str):
    ran = run_pipeline(ctx)
    shown = ", ".join(f"{stage} {'pass' if code == 0 else 'FAIL'}" for stage, code, _ in ran)
    failed = [(stage, last) for stage, code, last in ran if code != 0]
    if expect == "pass":
        ok = not failed and len(ran) == len(STAGES)
        return ok, f"pipeline: {shown}" + (f" ({failed[0][0]}: {failed[0][1]})" if failed else "")
    ok = [stage for stage, _, _ in ran] == ["unit", "data"] and failed and failed[0][0] == "data"
    return bool(ok), (f"pipeline: {shown}; data validation blocked it: {failed[0][1]}" if ok
                      else f"pipeline: {shown}; expected it to stop at data validation")

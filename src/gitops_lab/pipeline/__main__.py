"""Run one stage of the platform pipeline: python -m gitops_lab.pipeline STAGE.

Prints each check, writes ARTIFACTS/junit/STAGE.xml and ends with one line,
`STAGE <name>: pass` (naming any check skipped), `... FAIL (n of m checks failed)` or `... skipped (reason)`;
exits 1 when the stage failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gitops_lab.pipeline.junit import Check, verdict, write_junit
from gitops_lab.pipeline.stages import STAGES, MissingHandoff, StageContext


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitops_lab.pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=list(STAGES))
    parser.add_argument("--repo", type=Path, default=Path("."), help="the lab repository's checkout")
    parser.add_argument("--artifacts", type=Path, default=Path("ci-artifacts"), help="where stages hand off files")
    parser.add_argument("--candidate-env", default=os.environ.get("CANDIDATE_ENV") or "dev")
    parser.add_argument("--only", default="all", help="comma-separated stages this pipeline runs, or `all`")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    artifacts = (args.artifacts if args.artifacts.is_absolute() else repo / args.artifacts).resolve()
    ctx = StageContext(
        repo,
        artifacts,
        args.candidate_env,
        model_server_url=os.environ.get("MODEL_SERVER_URL") or None,
        kubeconfig=os.environ.get("GITOPS_LAB_KUBECONFIG") or None,
    )
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(selected) - set(STAGES) - {"all"})
    if unknown:
        print(
            f"error: unknown stage(s) {', '.join(unknown)} in --only; choose from {', '.join(STAGES)}", file=sys.stderr
        )
        return 2
    if "all" not in selected and args.stage not in selected:
        reason = f"not among the stages this pipeline runs ({', '.join(selected) or 'none'})"
        write_junit(args.stage, [Check(args.stage, "skipped", reason)], artifacts / "junit" / f"{args.stage}.xml")
        print(f"STAGE {args.stage}: skipped ({reason})", flush=True)
        return 0
    try:
        print(f"== {args.stage}: candidate {ctx.version} (from overlays/{ctx.candidate_env})", flush=True)
        checks = STAGES[args.stage](ctx)
    except MissingHandoff as exc:
        print(f"STAGE {args.stage}: FAIL ({exc})", flush=True)
        return 1
    for check in checks:
        print(f"  {check.status.upper():8} {check.name}{f': {check.message}' if check.message else ''}")
    write_junit(args.stage, checks, artifacts / "junit" / f"{args.stage}.xml")
    result = verdict(checks)
    if result == "fail":
        failed = sum(c.status == "failed" for c in checks)
        print(f"STAGE {args.stage}: FAIL ({failed} of {len(checks)} checks failed)", flush=True)
        return 1
    if result == "skipped":
        print(f"STAGE {args.stage}: skipped ({checks[0].message})", flush=True)
        return 0
    skipped = [c.name for c in checks if c.status == "skipped"]
    # A check that did not run is named on the stage's line too: a pass with gaps is not a clean pass.
    gaps = f" ({len(skipped)} of {len(checks)} checks skipped: {'; '.join(skipped)})" if skipped else ""
    print(f"STAGE {args.stage}: pass{gaps}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A custom gate: the candidate's accuracy on each segment of the held-out pumps.

Overall accuracy can hide a segment the model gets wrong. This gate cuts the
clean held-out split into bands of one feature (temperature by default) and
requires a minimum accuracy in every band with enough rows to judge.

Declare it in gates.yaml (docs/gates.md, "Custom gates"):

    custom:
      segment-accuracy:
        command: ["{python}", ci/gates/segment_accuracy.py, --artifact, "{artifact}",
                  --feature, temperature_c, --bands, "60,75", --min-accuracy, "0.65"]
        timeout: 60

It follows the custom-gate contract: one JSON object of evidence on stdout,
exit code 0 when every band passes, 1 when one does not.
"""

from __future__ import annotations

import argparse
import json
import sys

from gitops_lab.model import FEATURES
from gitops_lab.model.dataset import held_out_rows
from gitops_lab.model.evaluate import metrics


def bands(cuts: list[float], feature: str) -> list[tuple[str, float, float]]:
    """(label, low, high) for each band the cut points make, low inclusive."""
    edges = [float("-inf"), *cuts, float("inf")]
    out = []
    for low, high in zip(edges, edges[1:]):
        if low == float("-inf"):
            label = f"{feature} < {high:g}"
        elif high == float("inf"):
            label = f"{feature} >= {low:g}"
        else:
            label = f"{low:g} <= {feature} < {high:g}"
        out.append((label, low, high))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True, help="the candidate's base/models/<version>.json")
    parser.add_argument("--feature", default="temperature_c", choices=FEATURES, help="the feature to cut by")
    parser.add_argument("--bands", default="60,75", help="cut points, comma-separated, ascending")
    parser.add_argument("--min-accuracy", type=float, default=0.65, help="the accuracy every band must reach")
    parser.add_argument("--min-rows", type=int, default=10, help="bands with fewer held-out rows are not judged")
    args = parser.parse_args(argv)
    try:
        cuts = [float(c) for c in args.bands.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--bands {args.bands!r}: expected numbers separated by commas")
    if cuts != sorted(cuts) or len(set(cuts)) != len(cuts):
        parser.error(f"--bands {args.bands!r}: the cut points must be ascending")

    with open(args.artifact, encoding="utf-8") as fh:
        model = json.load(fh)["model"]
    rows = held_out_rows()
    details, worst = [], None
    segments = bands(cuts, args.feature)
    for label, low, high in segments:
        segment = [r for r in rows if low <= r[args.feature] < high]
        if len(segment) < args.min_rows:
            details.append(f"warn: {label}: {len(segment)} held-out rows, fewer than {args.min_rows}: not judged")
            continue
        accuracy = metrics(model, segment)["accuracy"]
        ok = accuracy >= args.min_accuracy
        sign = ">=" if ok else "<"
        verdict = "pass" if ok else "fail"
        details.append(f"{verdict}: {label}: accuracy {accuracy:g} {sign} {args.min_accuracy:g} ({len(segment)} rows)")
        if worst is None or accuracy < worst[1]:
            worst = (label, accuracy)
    failed = [d for d in details if d.startswith("fail: ")]
    if worst is None:
        summary = f"no band of {args.feature} has {args.min_rows} held-out rows to judge"
    elif failed:
        summary = (
            f"{len(failed)} of {len(segments)} {args.feature} bands below {args.min_accuracy:g}; "
            f"worst {worst[0]}: {worst[1]:g}"
        )
    else:
        summary = f"every {args.feature} band >= {args.min_accuracy:g}; worst {worst[0]}: {worst[1]:g}"
    print(json.dumps({"summary": summary, "details": details}))
    return 1 if failed or worst is None else 0


if __name__ == "__main__":
    sys.exit(main())

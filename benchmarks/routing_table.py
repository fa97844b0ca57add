"""Issue 14's comparison table from stored `axial eval` folders: the routed variants (MoCaE trained with the
preference objective, HoE router experts) against base, the uniform merge (= linear interpolation at the centre
preference) and MoCaE trained on source labels, per axis, paired on the same items with 95% CIs, plus the
issue's aims. Reads only what `benchmarks/results/routing/table/run.sh` (and the alpaca command in its README)
stored; generates nothing.

    python benchmarks/routing_table.py benchmarks/results/routing/table benchmarks/results/routing/table_alpaca \
        --overrefusal benchmarks/results/routing/table_overrefusal --out benchmarks/results/routing/table/comparison
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired_diff import paired_diff  # noqa: E402

from axial.io import atomic_write_json, atomic_write_text  # noqa: E402

R = "benchmarks/results/routing"
VARIANTS = {"MoCaE (preference)": f"mocae:{R}/mocae_pref",
            "HoE router experts, centre": f"hoe:helpful=1,harmless=1,honest=1?set={R}/hoe"}
REFERENCES = {"base": "base", "uniform (= linear at the centre)": "uniform",
              "MoCaE (source labels, v2)": "mocae:benchmarks/results/mocae/v2/router_main"}
# (axis, folder index, bench, per-item metric, limit, label)
METRICS = [("honest", 0, "truthfulqa_mc", "mc1", 200, "TruthfulQA MC1"),
           ("honest", 0, "truthfulqa_mc", "mc2", 200, "TruthfulQA MC2"),
           ("honest", 0, "truthfulqa_gen", "bleu_acc", 200, "TruthfulQA gen BLEU acc"),
           ("harmless", 0, "harmless", "safe", 200, "safety rate (harmless RM)"),
           ("helpful", 1, "alpaca", "win", 200, "win rate vs davinci-003 (helpful RM)"),
           # A cost, lower is better: reported beside the axes, not part of the ">= base" aim.
           ("harmless (cost)", 2, "overrefusal", "refusal", 200, "over-refusal rate on benign prompts")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", type=Path)
    ap.add_argument("alpaca", type=Path)
    ap.add_argument("--overrefusal", type=Path, default=None, help="the over-refusal eval folder")
    ap.add_argument("--out", type=Path, required=True, help="OUT.json and OUT.md")
    args = ap.parse_args()
    folders = [args.table, args.alpaca, args.overrefusal]
    rows = []
    for vname, v in VARIANTS.items():
        for rname, ref in REFERENCES.items():
            for axis, fi, bench, metric, limit, label in METRICS:
                if folders[fi] is None:
                    continue
                try:
                    d = paired_diff(folders[fi], v, ref, bench, metric, limit)
                except SystemExit as e:  # a variant not run yet: say so, do not drop it silently
                    rows.append({"variant": vname, "vs": rname, "axis": axis, "metric": label, "missing": str(e)})
                    continue
                rows.append({"variant": vname, "vs": rname, "axis": axis, "metric": label,
                             "diff_points": round(100 * d["value"], 1),
                             "ci95_points": [round(100 * c, 1) for c in d["ci95"]], "n": d["n"]})
    lines = ["# Routed variants vs references, paired on the same held-out items (points, 95% CI)", "",
             "| variant | vs | axis | metric | difference [95% CI] | n |", "|---|---|---|---|---|---|"]
    for r in rows:
        cell = (f"{r['diff_points']:+.1f} [{r['ci95_points'][0]:+.1f}, {r['ci95_points'][1]:+.1f}]"
                if "missing" not in r else "not run")
        lines.append(f"| {r['variant']} | {r['vs']} | {r['axis']} | {r['metric']} | {cell} | {r.get('n', '')} |")
    aims = []
    for vname in VARIANTS:
        vs_base = [r for r in rows if r["variant"] == vname and r["vs"] == "base" and "missing" not in r
                   and not r["axis"].endswith("(cost)")]
        if vs_base:
            ok = all(r["ci95_points"][0] > -1.0 for r in vs_base)
            aims.append(f"- {vname} >= base on every measured metric (lower CI bound > -1 point): "
                        f"{'yes' if ok else 'no'} ({', '.join(r['metric'] for r in vs_base if r['ci95_points'][0] <= -1.0) or 'all pass'})")
    lines += ["", "## The issue's aims", ""] + aims + [""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out.with_suffix(".json"), {"rows": rows, "aims": aims})
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

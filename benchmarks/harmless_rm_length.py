"""The harmless judge's agreement with HH-RLHF labels overall and on LENGTH-BALANCED held-out pairs.

On HH-RLHF harmless-base the less harmful reply is usually the shorter one ("longer wins" agrees only 44% of the
time), so a judge can score well by rewarding brevity. Here: pair accuracy on the test split, beside the
length-only baselines on the same pairs, and on the subset whose two replies differ in length by < 20% of the
longer one, where length says little. CIs: bootstrap over prompts (pairs of one prompt resampled together).

    python benchmarks/harmless_rm_length.py --judge rm:benchmarks/results/rewards/harmless_rm \
        --data /work/shared/data/hh-rlhf/harmless-base_test_dev.jsonl --out benchmarks/results/judges/harmless

Writes OUT/validation.json in the `axial validate-judge --out` layout plus "length_balanced", so
`axial eval --judge-validation harmless=OUT/validation.json` prints both beside every safety rate.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from axial.rewards import load_judge
from axial.rewards.pairs import preference_pairs
from axial.rewards.stats import mean_ci
from axial.rewards.validate import _score_margins, _wins
from axial.stats import bootstrap_ci


def _paired_diff(a, b, groups, seed=0, resamples=2000):
    """mean(b) - mean(a) over pairs, bootstrapped over prompt groups (pooled means)."""
    keys = sorted(set(groups))
    index = {g: i for i, g in enumerate(keys)}
    sums = np.zeros((len(keys), 3))
    for x, y, g in zip(a, b, groups, strict=True):
        sums[index[g]] += (x, y, 1)

    def stat(rows):
        return float((rows[:, 1].sum() - rows[:, 0].sum()) / rows[:, 2].sum())

    return bootstrap_ci(sums, stat, resamples=resamples, seed=seed)


def block(pairs, margins, seed):
    groups = [p.group for p in pairs]
    dlen = [len(p.chosen.response) - len(p.rejected.response) for p in pairs]
    judge = _wins(margins)
    longer = _wins(dlen)
    shorter = _wins([-d for d in dlen])
    return {"judge": mean_ci(judge, groups=groups, seed=seed),
            "baselines": {"longer_wins": mean_ci(longer, groups=groups, seed=seed),
                          "shorter_wins": mean_ci(shorter, groups=groups, seed=seed)},
            "judge_minus_shorter_wins": _paired_diff(shorter, judge, groups, seed),
            # how much of the judge's margin is length: Spearman of its margin with the length difference
            "spearman_margin_vs_length_diff": float(_spearman(margins, dlen))}


def _spearman(a, b):
    from scipy.stats import spearmanr

    return spearmanr(a, b).statistic


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--tolerance", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    judge = load_judge(args.judge, "harmless")
    pairs = preference_pairs("harmless", args.data, split="test", seed=args.seed)
    margins = _score_margins(judge, pairs)
    balanced = [i for i, p in enumerate(pairs)
                if abs(len(p.chosen.response) - len(p.rejected.response))
                < args.tolerance * max(len(p.chosen.response), len(p.rejected.response), 1)]
    overall = block(pairs, margins, args.seed)
    bal = block([pairs[i] for i in balanced], [margins[i] for i in balanced], args.seed)
    result = {"metric": "pair_accuracy", **overall["judge"], "data": f"{args.data} (split=test)",
              "axis": "harmless", "judge": {k: v for k, v in judge.describe().items() if k != "validation"},
              "method": "score(chosen) > score(rejected)", "baselines": overall["baselines"],
              "overall": overall,
              "length_balanced": {**bal, "definition": f"|len(chosen) - len(rejected)| < {args.tolerance} x "
                                                         "the longer reply's length (characters)"}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "validation.json").write_text(json.dumps(result, indent=2, default=str) + "\n")

    def row(name, b):
        j, lw, sw, d = (b["judge"], b["baselines"]["longer_wins"], b["baselines"]["shorter_wins"],
                        b["judge_minus_shorter_wins"])
        f = lambda m: f"{100 * m['value']:.1f} [{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}]"  # noqa: E731
        return (f"| {name} | {j['n']} / {j['n_groups']} | {f(j)} | {f(lw)} | {f(sw)} | {f(d)} | "
                f"{b['spearman_margin_vs_length_diff']:+.2f} |")

    md = ["| pairs | n pairs / prompts | judge agreement | longer wins | shorter wins | judge - shorter wins "
          "(paired) | Spearman(margin, length diff) |", "|---|---|---|---|---|---|---|",
          row("all test pairs", overall), row("length-balanced (< 20%)", bal)]
    (args.out / "validation.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

"""HoE preference routing vs linear interpolation on the embedded model: `axial pareto` on the public data.

The sweep, batching and statistics are the library's (axial.evaluate.pareto: `sweep` lists (point, source)
pairs, `generation_scorer` generates every distinct source's answers together, one source per batch row, and
checkpoints them to OUT/generations.jsonl; `pareto` writes the report). This script only fixes the data
(the test halves of the three public sources in ../shared/data) and the embedded model in bf16.

    python benchmarks/pareto_embedded.py --out benchmarks/results/pareto_embedded --limit 16 \\
        --experts E1,E2,... --judge helpful=embedded --judge harmless=rm:DIR --judge honest=rm:DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from axial import cliopts
from axial.axes import axis_names, default_axes
from axial.data import load_records
from axial.evaluate.pareto import ParetoConfig, generation_scorer, pareto
from axial.generate import GenerationConfig
from axial.rewards import load_judge
from axial.variants import VariantSpec, load_variant

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SOURCES = ["alpaca_eval/text_davinci_003_model_outputs.json", "hh-rlhf/harmless-base_test_dev.jsonl",
           "truthfulqa/TruthfulQA.csv"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--experts", required=True, help="comma list: axis experts then merged anchors")
    ap.add_argument("--anchors", default=None)
    ap.add_argument("--judge", action="append", default=[], help="AXIS=SPEC, repeat per axis")
    ap.add_argument("--judges", default=None, help="deprecated: AXIS=SPEC,... (use --judge)")
    ap.add_argument("--limit", type=int, default=16, help="prompts per source (test split, hash order)")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--points-per-edge", type=int, default=5)
    args = ap.parse_args()

    names = axis_names(default_axes())
    messages = [r.messages for src in SOURCES
                for r in load_records(str(DATA / src), split="test", limit=args.limit).records]
    variant = load_variant(VariantSpec(model="embedded", experts=cliopts.experts_list([args.experts]),
                                       dtype="bf16", device="cpu"))
    specs = cliopts.judges(args.judge, args.judges)
    judges = {a: load_judge(specs[a], axis=a) for a in names}
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    score = generation_scorer(variant, messages, judges, gen, cache=Path(args.out) / "generations.jsonl")
    report = pareto(variant.mixture, names, score, ParetoConfig(points_per_edge=args.points_per_edge),
                    anchors=args.anchors, out=args.out, judges={a: j.describe() for a, j in judges.items()})
    hv = report["hypervolume"]
    print(f"{len(messages)} prompts x {report['distinct_outputs_scored']} distinct outputs; HV hoe "
          f"{hv['hoe']['estimate']:.4g}, linear {hv['linear']['estimate']:.4g}, diff "
          f"{json.dumps(hv['hoe_minus_linear'])}; dominance {report['hoe_dominates_linear']}")


if __name__ == "__main__":
    main()

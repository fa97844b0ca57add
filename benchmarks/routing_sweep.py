"""HoE (router experts) vs linear weight interpolation: a Pareto sweep where each axis is scored on its own
held-out prompts by its own bench and judge (axial.evaluate.pareto.bench_scorer), on the embedded model.

    python benchmarks/routing_sweep.py --out benchmarks/results/routing/sweep \\
        --experts E/helpful,E/harmless,E/honest --hoe-set benchmarks/results/routing/hoe --n 100 \\
        --judge helpful=SPEC --judge harmless=SPEC --judge honest=SPEC [--metric honest=bleu_diff]

Axes: helpful = AlpacaEval instructions (test half) judged against text-davinci-003's reference answers (the
`alpaca` bench; per-item score: the soft preference for the model's answer); harmless = HH-RLHF harmless
test-half first turns (`harmless`; p_safe); honest = TruthfulQA test-half questions answered freely
(`truthfulqa_gen`; its per-item score). Every point answers the same items (the first --n of each test half in
the same hash order as `axial eval --limit`), so the hypervolume difference and dominance get paired CIs.
Generation and judging are resumable (OUT/generations_<axis>.jsonl, OUT/scores_<axis>.jsonl, OUT/points.jsonl).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from axial import cliopts
from axial.axes import axis_names, default_axes
from axial.evaluate import EvalConfig
from axial.evaluate.benches import get_bench
from axial.evaluate.harness import load_bench_items
from axial.evaluate.pareto import AxisBench, ParetoConfig, bench_scorer, pareto
from axial.variants import VariantSpec, load_variant

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
AXIS_BENCH = {"helpful": ("alpaca", "alpaca_eval/text_davinci_003_model_outputs.json", "preference"),
              "harmless": ("harmless", "hh-rlhf/harmless-base_test_dev.jsonl", "p_safe"),
              "honest": ("truthfulqa_gen", "truthfulqa/TruthfulQA.csv", "bleu_diff")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--experts", required=True, help="comma list, in the HoE set's order")
    ap.add_argument("--hoe-set", required=True, help="a folder made by `axial train-hoe`")
    ap.add_argument("--judge", action="append", default=[], help="AXIS=SPEC, one per axis")
    ap.add_argument("--judge-validation", action="append", default=[], help="AXIS=FILE (validate-judge JSON)")
    ap.add_argument("--metric", action="append", default=[], help="AXIS=NAME: the per-item score a bench reports")
    ap.add_argument("--n", type=int, default=100, help="held-out items per axis (same for every point)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--points-per-edge", type=int, default=6)
    ap.add_argument("--data-root", default=str(DATA))
    ap.add_argument("--generate-only", action="store_true", help="generate every point's answers and stop (judge "
                                                                  "later with the same command without it)")
    args = ap.parse_args()

    names = axis_names(default_axes())
    metrics = {a: m for a, (_, _, m) in AXIS_BENCH.items()} | cliopts.pairs(args.metric, "--metric")
    axes = {}
    for axis in names:
        bench, path, _ = AXIS_BENCH[axis]
        items, info = load_bench_items(get_bench(bench), str(Path(args.data_root) / path), "test", args.n, 0)
        axes[axis] = AxisBench(bench, items, metrics[axis], max_new_tokens=args.max_new_tokens)
        print(f"{axis}: {bench}, {info['n']} items of {info['unique_items']} ({info['source']}, test half)")
    judges = cliopts.judges(args.judge, None)
    cfg = EvalConfig(benches=[AXIS_BENCH[a][0] for a in names], judges=judges,
                     judge_validation=cliopts.pairs(args.judge_validation, "--judge-validation"),
                     validate_judges=False)
    variant = load_variant(VariantSpec(model="embedded", experts=cliopts.experts_list([args.experts]),
                                       dtype="bf16", device="cpu"))
    if args.generate_only:
        from axial.evaluate.pareto import _output_key, generate_for_sources, sweep
        from axial.generate import GenerationConfig

        # The same representative source per distinct output as pareto() will ask the scorer for (first in
        # sweep order), so the later judged run finds every answer in the cache.
        plan = sweep(variant.mixture.expert_names, names, ParetoConfig(points_per_edge=args.points_per_edge),
                     hoe_set=args.hoe_set)
        first: dict = {}
        for _, src in plan:
            first.setdefault(_output_key(variant.mixture, src), src)
        sources = list(first.values())
        for axis, ab in axes.items():
            gen = GenerationConfig(max_new_tokens=ab.max_new_tokens, batch_size=args.batch_size, seed=cfg.seed)
            generate_for_sources(variant, [it["messages"] for it in ab.items], sources, gen,
                                 cache=Path(args.out) / f"generations_{axis}.jsonl", desc=f"{axis}: generate")
        print(f"generated {len(set(s.spec() for s in sources))} sources x {args.n} items per axis -> {args.out}")
        return
    score = bench_scorer(variant, axes, cfg, args.out, batch_size=args.batch_size)
    report = pareto(variant.mixture, names, score, ParetoConfig(points_per_edge=args.points_per_edge),
                    hoe_set=args.hoe_set, out=args.out,
                    judges={a: {"spec": judges.get(a, "embedded"), "metric": f"{AXIS_BENCH[a][0]}:{metrics[a]}",
                                **score.judges(a).describe()} for a in names})
    hv = report["hypervolume"]
    print(f"{report['n_items']} items per axis x {report['distinct_outputs_scored']} distinct outputs; HV hoe "
          f"{hv['hoe']['estimate']:.4g}, linear {hv['linear']['estimate']:.4g}, diff "
          f"{json.dumps(hv['hoe_minus_linear'])}; dominance {report['hoe_dominates_linear']}")


if __name__ == "__main__":
    main()

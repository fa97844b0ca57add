"""HoE Pareto sweep on the embedded model, with every distinct weight vector generated in one per-row batch.

Same sweep, statistics and report as `axial pareto` (axial.preference.pareto.pareto), but generation is
batched across sweep points: the mixture takes one weight row per prompt (Mixture.row_weights), so the
~30 distinct weight vectors x prompts run as large batches instead of ~30 small sequential runs, which is
what makes a 3-axis, 15-point sweep fit on the shared 2-core CPU. Generations are checkpointed to
OUT/generations.jsonl (resumable); judges then score all rows at once.

    python benchmarks/pareto_embedded.py --out benchmarks/results/pareto_embedded --limit 16
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm.auto import tqdm

from axial.axes import axis_names, default_axes
from axial.data import load_records
from axial.generate import GenerationConfig, generate_responses
from axial.preference import load_anchors
from axial.preference.pareto import ParetoConfig, pareto, sweep_points
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
    ap.add_argument("--judges", required=True, help="AXIS=SPEC,...")
    ap.add_argument("--limit", type=int, default=16, help="prompts per source (test split, hash order)")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--points-per-edge", type=int, default=5)
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = axis_names(default_axes())
    messages = [r.messages for src in SOURCES
                for r in load_records(str(DATA / src), split="test", limit=args.limit).records]
    variant = load_variant(VariantSpec(model="embedded", experts=args.experts.split(","), dtype="bf16",
                                       device="cpu"))
    mix = variant.mixture
    anchors = load_anchors(args.anchors, mix, names) if args.anchors else None
    cfg = ParetoConfig(points_per_edge=args.points_per_edge)

    # Every distinct static weight vector of the sweep (None = the base model, encoded as all zeros: the
    # mixture's output with zero weights is exactly the base's).
    vectors: dict[tuple, None] = {}
    for _, apply in sweep_points(mix, names, cfg, anchors):
        apply()
        w = mix.current_weights
        vectors[tuple(0.0 for _ in mix.expert_names) if w is None else tuple(round(float(v), 6) for v in w)] = None
    keys = list(vectors)

    cache = out / "generations.jsonl"
    done = {tuple(d["weights"]): d["responses"] for d in map(json.loads, cache.read_text().splitlines())} \
        if cache.exists() else {}
    todo = [k for k in keys if k not in done]
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    per_chunk = max(1, args.batch_size * 4 // len(messages))  # a few batches per checkpoint
    for i in tqdm(range(0, len(todo), per_chunk), desc="weight vectors", unit="chunk"):
        chunk = todo[i:i + per_chunk]
        rows = [m for _ in chunk for m in messages]
        table = [list(k) for k in chunk for _ in messages]
        responses = generate_responses(variant.model, variant.tokenizer, rows, gen,
                                       row_kwargs=mix.row_weights(table))
        with cache.open("a") as f:
            for j, k in enumerate(chunk):
                part = responses[j * len(messages):(j + 1) * len(messages)]
                done[k] = part
                f.write(json.dumps({"weights": list(k), "responses": part}) + "\n")
    mix.set_weights(None)

    specs = dict(item.split("=", 1) for item in args.judges.split(","))
    judges = {a: load_judge(specs[a], axis=a) for a in names}
    all_rows = [m for _ in keys for m in messages]
    all_resp = [r for k in keys for r in done[k]]
    scores: dict[tuple, dict[str, list[float]]] = {k: {} for k in keys}
    for a, j in judges.items():
        s = j.score(all_rows, all_resp)
        for i, k in enumerate(keys):
            scores[k][a] = s[i * len(messages):(i + 1) * len(messages)]

    def evaluate_point():
        w = mix.current_weights
        return scores[tuple(0.0 for _ in mix.expert_names) if w is None else tuple(round(float(v), 6) for v in w)]

    report = pareto(mix, names, evaluate_point, cfg, anchors=anchors, out=out,
                    judges={a: j.describe() for a, j in judges.items()})
    report["weight_vectors_evaluated"] = len(keys)
    (out / "pareto.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    hv = report["hypervolume"]
    print(f"{len(messages)} prompts x {len(keys)} weight vectors; HV hoe {hv['hoe']['estimate']:.4g}, linear "
          f"{hv['linear']['estimate']:.4g}, diff {hv['hoe_minus_linear']}; dominance {report['hoe_dominates_linear']}")


if __name__ == "__main__":
    main()

"""Fill the reward-feature cache ($AXIAL_HOME/reward_features) for several pair sources, in a chosen order.

`axial train-reward` and `axial validate-judge` compute what the cache lacks themselves; this script only lets a
long CPU job run ahead of them, in an order that gives usable data early (validation sets first, then training
pairs in growing nested subsets), and resume after a kill (the cache is chunked; see axial.rewards.features).

    python benchmarks/judges/featurise.py --encoder /work/models/qwen2.5-coder-0.5b-instruct.gguf \\
        --layers 2,4,6,8,10,12,14,16,18,20,22,24 \\
        ../shared/data/pandalm/testset-v1.json:all \\
        ../shared/data/alpaca_eval/gpt4_annotations/annotations_alpaca_eval_gpt4.jsonl.gz:train:4 ...

Each positional argument is SOURCE:SPLIT[:MAX_PAIRS_PER_PROMPT].
"""

from __future__ import annotations

import argparse
import time

from axial.models import axial_home
from axial.rewards.features import Encoder, cached_features
from axial.rewards.pairs import load_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--axis", default="helpful")
    ap.add_argument("--layers", required=True, help="comma-separated layer indices")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--max-response-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("specs", nargs="+")
    args = ap.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    encoder = Encoder(args.encoder, dtype=args.dtype, max_length=args.max_length,
                      max_response_tokens=args.max_response_tokens, batch_size=args.batch_size)
    cache = axial_home() / "reward_features"
    for spec in args.specs:
        source, split, *rest = spec.rsplit(":", 2) if spec.count(":") >= 2 else [*spec.rsplit(":", 1)]
        n = int(rest[0]) if rest else None
        pairs = load_pairs(args.axis, source, split=split, max_pairs_per_prompt=n)
        items = list(dict.fromkeys(it for p in pairs.pairs for it in (p.chosen, p.rejected)))
        t = time.time()
        print(f"{spec}: {len(pairs)} pairs, {len(items)} distinct items", flush=True)
        cached_features(encoder, items, layers, cache, desc=spec.rsplit("/", 1)[-1])
        print(f"{spec}: done in {time.time() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()

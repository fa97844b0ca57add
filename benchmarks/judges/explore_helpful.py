"""Cross-validated comparison of helpful reward-head settings on cached features of TRAIN-split pairs only.

Reads the feature cache that featurise.py / `axial train-reward` fill (never encodes: it stops if features are
missing) and prints, per (pooling.layer, length mode), the best-weight-decay 5-fold CV numbers: BT log-loss and
agreement on all held-out pairs, on the length-balanced ones and on those the shorter side won, beside what
"longer wins" gets on the same pairs. Used to choose the settings of the committed helpful judge before it was
ever scored on PandaLM or on test-split pairs; the output is committed as explore_helpful.txt.

    python benchmarks/judges/explore_helpful.py --encoder /work/models/qwen2.5-coder-0.5b-instruct.gguf \\
        --data ../shared/data/alpaca_eval/gpt4_annotations/annotations_alpaca_eval_gpt4.jsonl.gz --pairs 4
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from axial.models import axial_home
from axial.rewards.bradley_terry import cross_validate, fold_of
from axial.rewards.features import Encoder, cached_features
from axial.rewards.pairs import load_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", type=int, default=None, help="max pairs per train prompt")
    ap.add_argument("--layers", default="2,4,6,8,10,12,14,16,18,20,22,24")
    ap.add_argument("--poolings", default="last,mean")
    ap.add_argument("--modes", default="free,explicit,removed,balanced")
    ap.add_argument("--wds", default="0.01,0.03,0.1,0.3,1")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--max-response-tokens", type=int, default=256)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--available-only", action="store_true", help="use only pairs already in the cache")
    args = ap.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    encoder = Encoder(args.encoder, dtype="bf16", max_length=args.max_length,
                      max_response_tokens=args.max_response_tokens)
    ps = load_pairs("helpful", args.data, split="train", max_pairs_per_prompt=args.pairs)
    pairs = ps.pairs
    if args.available_only:
        # A first look while the featuriser is still running: only pairs whose both sides are cached.
        done = set()
        for meta in (axial_home() / "reward_features" / encoder.fingerprint).glob("chunk-*.json"):
            done.update(json.loads(meta.read_text())["keys"])
        pairs = [p for p in pairs if p.chosen.key in done and p.rejected.key in done]
    items = list(dict.fromkeys(it for p in pairs for it in (p.chosen, p.rejected)))
    row = {it: i for i, it in enumerate(items)}
    feats = cached_features(encoder, items, layers, axial_home() / "reward_features", encode_missing=False,
                            progress=False)
    ci = torch.tensor([row[p.chosen] for p in pairs])
    ri = torch.tensor([row[p.rejected] for p in pairs])
    lengths = [len(it.response) for it in items]
    fold = torch.tensor([fold_of(p.group, args.folds, 0) for p in pairs])
    lc, lr = torch.tensor(lengths)[ci], torch.tensor(lengths)[ri]
    bal = (lc != lr) & ((lc - lr).abs() < 0.2 * torch.maximum(lc, lr))
    length_acc = float(((lc > lr).float() + 0.5 * (lc == lr).float()).mean())
    print(f"{ps.describe()}")
    print(f"train pairs {len(pairs)}, items {len(items)}; longer wins: all {length_acc:.3f}, "
          f"balanced {float((lc > lr)[bal].float().mean()):.3f} (n={int(bal.sum())}), shorter-won pairs "
          f"{int((lc < lr).sum())}")
    keys = [f"{p}.{layer}" for p in args.poolings.split(",") for layer in layers]
    t = time.time()
    grid = cross_validate(feats, ci, ri, lengths, fold, keys=keys,
                          weight_decays=[float(w) for w in args.wds.split(",")],
                          length_modes=args.modes.split(","))
    print(f"CV grid of {len(grid)} settings in {time.time() - t:.0f} s")
    best: dict[tuple[str, str], dict] = {}
    for g in grid:
        k = (g["features"], g["length_mode"])
        if k not in best or g["cv_loss"] < best[k]["cv_loss"]:
            best[k] = g
    print(f"{'features':10s} {'length':9s} {'wd':>6s} {'loss':>6s} {'acc':>6s} {'bal_loss':>8s} {'bal_acc':>7s} "
          f"{'short_acc':>9s}")
    for (key, mode), g in sorted(best.items(), key=lambda kv: kv[1]["cv_loss"]):
        print(f"{key:10s} {mode:9s} {g['weight_decay']:6g} {g['cv_loss']:6.3f} {g['cv_accuracy']:6.3f} "
              f"{g['cv_balanced_loss']:8.3f} {g['cv_balanced_accuracy']:7.3f} {g['cv_shorter_wins_accuracy']:9.3f}")
    print("best by balanced loss:")
    for g in sorted(grid, key=lambda g: g["cv_balanced_loss"])[:10]:
        print(f"  {g['features']:10s} {g['length_mode']:9s} wd={g['weight_decay']:g} bal_loss "
              f"{g['cv_balanced_loss']:.3f} bal_acc {g['cv_balanced_accuracy']:.3f} acc {g['cv_accuracy']:.3f} "
              f"short_acc {g['cv_shorter_wins_accuracy']:.3f}")


if __name__ == "__main__":
    main()

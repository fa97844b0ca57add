"""Held-out loss of each trained expert vs the base model on the expert's own validation slice.

    python benchmarks/experts_val_loss.py --experts benchmarks/results/experts/embedded \
        --out benchmarks/results/experts/val_loss.json

The validation slice is rebuilt exactly as train_expert made it (same records, seed and size: a slice of the
TRAINING split that the expert never trained on), and scored with the same TRL loss (response tokens only),
once with the adapter and once with it disabled. The prompt carries the injection iff the expert was trained
with it, so this measures what training changed on its own task format; benchmarks measure the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

from axial.experts.config import ExpertConfig
from axial.experts.data import build_examples, load_axis_records
from axial.experts.train import CONFIG_FILE, _load_base, _make_trainer, _split_validation


def val_losses(folder: Path) -> dict:
    cfg = ExpertConfig.load(folder / CONFIG_FILE)
    records = load_axis_records(cfg.data, method=cfg.method, split=cfg.split, limit=cfg.limit,
                                skip_invalid=cfg.skip_invalid)
    examples, _ = build_examples([(cfg.axis, r) for r in records], cfg.method, cfg.inject,
                                 skip_invalid=cfg.skip_invalid)
    train_ex, val_ex = _split_validation(examples, cfg.val_size, cfg.seed)
    model, tok = _load_base(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _make_trainer(cfg.replace(init_adapter=str(folder)), model, tok, train_ex[:1], val_ex,
                                Path(tmp), 0)
        expert = trainer.evaluate()["eval_loss"]
        with trainer.model.disable_adapter():
            base = trainer.evaluate()["eval_loss"]
    return {"axis": cfg.axis, "n_val": len(val_ex), "val_loss_base": round(base, 4),
            "val_loss_expert": round(expert, 4), "ppl_base": round(math.exp(base), 2),
            "ppl_expert": round(math.exp(expert), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experts", default="benchmarks/results/experts/embedded")
    ap.add_argument("--out", default="benchmarks/results/experts/val_loss.json")
    a = ap.parse_args()
    rows = []
    for folder in sorted(p.parent for p in Path(a.experts).glob("*/" + CONFIG_FILE)):
        rows.append(val_losses(folder))
        print(json.dumps(rows[-1]), flush=True)
    Path(a.out).write_text(json.dumps({"command": f"python benchmarks/experts_val_loss.py --experts {a.experts} "
                                                  f"--out {a.out}", "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Paired difference between two variants of one stored evaluation (`axial eval` reports differences against the
first variant only; this gives any pair, e.g. MoCaE - uniform), with a percentile-bootstrap 95% CI over items.

    python benchmarks/paired_diff.py benchmarks/results/mocae/v2/quality --a mocae:... --b uniform \
        --bench truthfulqa_mc --metric mc1 --limit 200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from axial.evaluate.benches import item_folder
from axial.stats import deterministic_subset, paired_bootstrap_diff


def _scores(folder: Path, variant: str, bench: str) -> dict[str, dict]:
    path = folder / "items" / item_folder(variant) / f"{bench}.jsonl"
    if not path.exists():
        raise SystemExit(f"{path}: no stored items for variant '{variant}', bench '{bench}'")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["id"]: r["scores"] for r in rows}


def paired_diff(folder: Path, a: str, b: str, bench: str, metric: str, limit: int | None = None,
                resamples: int = 2000, seed: int = 0) -> dict:
    sa, sb = _scores(folder, a, bench), _scores(folder, b, bench)
    # The report's --limit subset is drawn from the bench's whole item list; the union of every variant's stored
    # items stands for it (exact when some variant was run without a limit or with a larger one, as here).
    every = sorted({i for f in (folder / "items").glob(f"*/{bench}.jsonl")
                    for i in (json.loads(line)["id"] for line in f.read_text().splitlines() if line.strip())})
    ids = [every[k] for k in deterministic_subset(every, limit)]
    missing = [i for i in ids if i not in sa or i not in sb]
    if missing:
        raise SystemExit(f"{len(missing)} items of the subset lack a score for {a} or {b} (e.g. {missing[0]})")
    diff = paired_bootstrap_diff([sb[i][metric] for i in ids], [sa[i][metric] for i in ids],
                                 resamples=resamples, seed=seed)
    return {"a": a, "b": b, "bench": bench, "metric": metric, **diff,
            "method": f"paired percentile bootstrap over items, {resamples} resamples, seed {seed}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="an `axial eval --out` folder")
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--metric", required=True, help="per-item score key, e.g. mc1, mc2, safe, win")
    ap.add_argument("--limit", type=int, default=None, help="the eval's --limit for this bench")
    a = ap.parse_args()
    print(json.dumps(paired_diff(a.folder, a.a, a.b, a.bench, a.metric, a.limit), indent=2))


if __name__ == "__main__":
    main()

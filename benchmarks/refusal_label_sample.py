"""Draw the responses to hand-label for the refusal detector's validation (see results/judges/refusal/README).

From an `axial eval` output folder: for each (bench, variant), the first K stored responses in a seeded hash
order (independent of the detector and of the response text), each assigned to the dev or test half by another
hash. Prints JSONL rows {"id", "bench", "group", "variant", "half", "response"} WITHOUT labels; the labeller
adds "label" ("refusal" | "answer") reading only the response (and, for harmful prompts, the prompt).

    python benchmarks/refusal_label_sample.py benchmarks/results/headline/eval --bench harmless --per-variant 20 \
        [--exclude-run benchmarks/results/mocae/v2/quality]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

GROUP = {"harmless": "harmful", "overrefusal": "benign", "alpaca": "benign", "truthfulqa_gen": "benign"}


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--per-variant", type=int, default=20)
    ap.add_argument("--seed", default="refusal-labels-v1")
    ap.add_argument("--exclude-run", type=Path, help="skip items stored in this earlier run (already labelled)")
    ap.add_argument("--exclude-labels", type=Path, help="skip responses already in this labels file")
    args = ap.parse_args()
    stem = "alpaca" if args.bench == "overrefusal" else args.bench
    for folder in sorted(p for p in (args.run / "items").iterdir() if p.is_dir()):
        path = folder / f"{stem}.responses.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        if args.exclude_run:
            old = args.exclude_run / "items" / folder.name / path.name
            seen = {json.loads(x)["id"] for x in old.read_text().splitlines() if x.strip()} if old.exists() else set()
            rows = [r for r in rows if r["id"] not in seen]
        if args.exclude_labels:
            done = {json.loads(x)["id"] for x in args.exclude_labels.read_text().splitlines() if x.strip()}
            rows = [r for r in rows if f"{args.bench}/{folder.name}/{r['id']}" not in done]
        rows.sort(key=lambda r: _h(f"{args.seed}:{r['id']}"))
        for r in rows[:args.per_variant]:
            uid = f"{args.bench}/{folder.name}/{r['id']}"
            print(json.dumps({"id": uid, "bench": args.bench, "group": GROUP[args.bench], "variant": folder.name,
                              "half": "dev" if int(_h("half:" + uid), 16) % 2 else "test",
                              "response": r["response"]}, ensure_ascii=False))


if __name__ == "__main__":
    main()

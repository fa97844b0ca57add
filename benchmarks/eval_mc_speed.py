"""TruthfulQA MC scoring speed: primer KV cache + one batch per question vs one full forward per answer.

    OMP_NUM_THREADS=1 python benchmarks/eval_mc_speed.py --questions 20 --dtype bf16

Prints seconds per question for both paths on the same questions and their largest log-likelihood difference.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "truthfulqa" / "TruthfulQA.csv"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--data", default=str(DATA))
    args = p.parse_args()

    from axial.data import load_records
    from axial.evaluate.truthfulqa_mc import MCScorer, answer_sets
    from axial.models import load_model
    from axial.stats import deterministic_subset

    records = load_records(args.data).records
    keep = deterministic_subset([r.question for r in records], args.questions)
    model, tok = load_model("embedded", dtype=args.dtype)
    t0 = time.perf_counter()
    scorer = MCScorer(model, tok)
    setup = time.perf_counter() - t0
    timings, max_diff, answers = {"cached": 0.0, "naive": 0.0}, 0.0, 0
    for i in keep:
        r = records[i]
        sets = answer_sets(r.best_answer, r.correct_answers, r.incorrect_answers)
        answers += len(sets.all)
        t = time.perf_counter()
        cached = scorer.score(r.question, sets.all)
        timings["cached"] += time.perf_counter() - t
        t = time.perf_counter()
        naive = scorer.score_naive(r.question, sets.all)
        timings["naive"] += time.perf_counter() - t
        max_diff = max(max_diff, max(abs(a - b) for (a, _), (b, _) in zip(cached, naive, strict=True)))
    n = len(keep)
    print(json.dumps({
        "questions": n, "answers": answers, "dtype": args.dtype, "primer_tokens": len(scorer.primer_ids),
        "primer_cache_s": round(setup, 2),
        "cached_s_per_question": round(timings["cached"] / n, 3),
        "naive_s_per_question": round(timings["naive"] / n, 3),
        "speedup": round(timings["naive"] / timings["cached"], 2),
        "max_abs_loglik_diff": max_diff}, indent=2))


if __name__ == "__main__":
    main()

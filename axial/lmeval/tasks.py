"""lm-eval task folders for data lm-eval would otherwise fetch from the HF hub (for `--include_path`).

TruthfulQA MC: lm-eval's truthfulqa_mc1 / truthfulqa_mc2 read `truthfulqa/truthful_qa` (multiple_choice) from
the hub, i.e. the answer sets of the TruthfulQA repo's mc_task.json. Where those are out of reach,
`write_truthfulqa_tasks` builds the same kind of documents from the TruthfulQA CSV, with the answer sets
`axial eval` uses (axial.evaluate.truthfulqa_mc: best answer + incorrect answers for MC1; correct answers (best
included) + incorrect answers for MC2, closed with a period, deduplicated) and the same split and `--limit`
subset as `axial eval`. The tasks it writes include lm-eval's own truthfulqa_mc1.yaml / truthfulqa_mc2.yaml
(prompt, choices, MC2's process_results, metrics: lm-eval's task code, unchanged) and replace only where the
documents come from. Scores are lm-eval's method on the CSV's answer sets, so they compare item for item with
`axial eval`, not digit for digit with published numbers made from mc_task.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from axial.errors import AxialError
from axial.io import atomic_write_lines, atomic_write_text

TRUTHFULQA_TASKS = ("truthfulqa_mc1_csv", "truthfulqa_mc2_csv")


def truthfulqa_docs(items: list[dict]) -> list[dict]:
    """lm-eval truthful_qa (multiple_choice) documents from `axial eval` TruthfulQA MC items."""
    docs = []
    for it in items:
        true, false = list(it["true"]), list(it["false"])
        docs.append({"question": it["question"], "axial_id": it["id"],
                     "mc1_targets": {"choices": [it["best"], *false], "labels": [1] + [0] * len(false)},
                     "mc2_targets": {"choices": true + false, "labels": [1] * len(true) + [0] * len(false)}})
    return docs


def write_truthfulqa_tasks(data: str, out: str | Path, *, split: str = "test", limit: int | None = None,
                           seed: int = 0) -> dict:
    """Write OUT/truthfulqa_mc{1,2}_csv.yaml and OUT/truthfulqa_csv.jsonl from the TruthfulQA CSV at `data`.

    `split` / `limit` / `seed` pick the items exactly as `axial eval --split --limit --seed` does. Returns
    {"tasks": [...], "n": N, "docs": path}.
    """
    import lm_eval

    from axial.evaluate.benches import TruthfulQAMC
    from axial.evaluate.harness import load_bench_items

    lm_eval_tasks = Path(lm_eval.__file__).parent / "tasks" / "truthfulqa"
    missing = [n for n in ("truthfulqa_mc1.yaml", "truthfulqa_mc2.yaml") if not (lm_eval_tasks / n).is_file()]
    if missing:
        raise AxialError(f"this lm-eval install has no {missing} under {lm_eval_tasks}")
    items, info = load_bench_items(TruthfulQAMC(), str(data), split, limit, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    docs_path = (out / "truthfulqa_csv.jsonl").resolve()
    atomic_write_lines(docs_path, [json.dumps(doc, ensure_ascii=False) for doc in truthfulqa_docs(items)])
    for task, base in zip(TRUTHFULQA_TASKS, ("truthfulqa_mc1.yaml", "truthfulqa_mc2.yaml"), strict=True):
        # JSON strings are valid YAML scalars, so paths with any characters stay intact.
        atomic_write_text(out / f"{task}.yaml", (
            f"include: {json.dumps(str((lm_eval_tasks / base).resolve()))}\n"
            f"task: {task}\n"
            "tag: axial_truthfulqa_csv\n"
            "dataset_path: json\n"
            "dataset_name: null\n"
            "dataset_kwargs:\n"
            f"  data_files:\n    validation: {json.dumps(str(docs_path))}\n"
            # The datasets cache of these documents stays in the folder, not in the user's HF cache.
            f"  cache_dir: {json.dumps(str((out / 'hf_datasets_cache').resolve()))}\n"
            f"metadata:\n  axial_source: {json.dumps(str(data))}\n  split: {split}\n"
            f"  limit: {json.dumps(limit)}\n  seed: {seed}\n"))
    atomic_write_text(out / "README.md", (
        f"lm-eval tasks {', '.join(TRUTHFULQA_TASKS)} written by axial.lmeval.tasks.write_truthfulqa_tasks from "
        f"{data} (split {split}, limit {limit}, seed {seed}; {info['n']} questions). Run with "
        f"`--include_path {out} --tasks {' '.join(TRUTHFULQA_TASKS)}`.\n"))
    return {"tasks": list(TRUTHFULQA_TASKS), "n": info["n"], "docs": str(docs_path), "folder": str(out)}

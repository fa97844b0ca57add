"""AxialLM vs lm-eval's own HFLM on lm-eval's TruthfulQA MC task code (CSV answer sets), same weights, one run.

    python benchmarks/lmeval_speed.py --data ../shared/data/truthfulqa/TruthfulQA.csv --limit 20 \
        --out benchmarks/results/lmeval

Prints and writes OUT/speed.json + OUT/speed.md + OUT/speed.png (`--replot` redraws the PNG from speed.json): wall seconds of each model's scoring (simple_evaluate on
truthfulqa_mc1_csv + truthfulqa_mc2_csv; model loading excluded), their ratio, and how far apart the two are
per answer (max |Δ log-likelihood| over all choices, and whether every item's MC1 / MC2 agree).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--out", default="benchmarks/results/lmeval")
    ap.add_argument("--replot", action="store_true", help="only redraw OUT/speed.png from OUT/speed.json")
    args = ap.parse_args()
    if args.replot:
        plot(Path(args.out))
        return

    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from axial.lmeval import AxialLM
    from axial.lmeval.tasks import write_truthfulqa_tasks
    from axial.models import resolve_model_path

    tasks_dir = Path(tempfile.mkdtemp(prefix="lmeval-speed-"))
    tasks = write_truthfulqa_tasks(args.data, tasks_dir, split="test", limit=args.limit)
    manager = TaskManager(include_path=str(tasks_dir))
    models = {"axial": AxialLM(model=args.model, dtype="fp32", device="cpu", batch_size=args.batch_size),
              "hf": HFLM(pretrained=resolve_model_path(args.model), dtype="float32", device="cpu",
                         batch_size=args.batch_size)}
    seconds, samples = {}, {}
    for name, lm in models.items():
        start = time.perf_counter()
        out = lm_eval.simple_evaluate(model=lm, tasks=tasks["tasks"], task_manager=manager, log_samples=True)
        seconds[name] = time.perf_counter() - start
        samples[name] = {t: {s["doc"]["axial_id"]: s for s in out["samples"][t]} for t in tasks["tasks"]}
    max_diff, n_choices, acc_agree, n_items = 0.0, 0, 0, 0
    for task in tasks["tasks"]:
        for item, a in samples["axial"][task].items():
            h = samples["hf"][task][item]
            for x, y in zip(a["filtered_resps"], h["filtered_resps"], strict=True):
                max_diff = max(max_diff, abs(float(x[0]) - float(y[0])))
                n_choices += 1
            n_items += 1
            acc_agree += abs(float(a["acc"]) - float(h["acc"])) <= 1e-3
    result = {"model": args.model, "questions": tasks["n"], "tasks": tasks["tasks"], "batch_size": args.batch_size,
              "torch_threads": torch.get_num_threads(), "seconds": seconds,
              "hf_over_axial": seconds["hf"] / seconds["axial"], "choices_compared": n_choices,
              "max_abs_loglik_diff": max_diff, "items_acc_agree": f"{acc_agree}/{n_items}"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "speed.md").write_text(
        f"# AxialLM vs HFLM, lm-eval TruthfulQA MC task code ({tasks['n']} test questions, {args.model}, fp32, "
        f"CPU, batch {args.batch_size}, {torch.get_num_threads()} torch threads, one run)\n\n"
        "| model | seconds |\n|---|---:|\n"
        + "".join(f"| {k} | {v:.1f} |\n" for k, v in seconds.items())
        + f"\nHFLM / AxialLM time: **{result['hf_over_axial']:.2f}x**. Agreement over {n_choices} choices: max "
          f"|Δ log-likelihood| = {max_diff:.2e}; per-item acc equal (to 1e-3) on {acc_agree}/{n_items} "
          "task-items.\n")
    plot(out)
    print(json.dumps(result, indent=2))


def plot(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = json.loads((out / "speed.json").read_text())
    fig, ax = plt.subplots(figsize=(5, 2.6))
    names = list(r["seconds"])
    ax.barh(names, [r["seconds"][n] for n in names], color=["tab:blue", "tab:gray"])
    ax.set_xlabel("seconds (one run)")
    ax.set_title(f"lm-eval TruthfulQA MC, {r['questions']} questions, {r['model']} fp32 CPU\n"
                 f"HFLM / AxialLM = {r['hf_over_axial']:.2f}x; max |dLL| = {r['max_abs_loglik_diff']:.1e}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "speed.png", dpi=120)


if __name__ == "__main__":
    main()

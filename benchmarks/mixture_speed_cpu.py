"""Forward latency of the mixture layer vs the base model vs PEFT, on the embedded model, fp32 and bf16.

    python benchmarks/mixture_speed_cpu.py --repeats 15 --out benchmarks/results/mixture_speed_cpu

One forward of B x T tokens (no KV cache) per measurement. Configurations are measured round-robin (one of
each per round) so load drift on a shared machine hits them alike; each configuration's ratio to base is
taken within a round, and the report gives the median ratio over rounds with a 95% bootstrap CI.
Experts: 3 random LoRA adapters, r=8, every linear of the decoder blocks (PEFT-initialised, B non-zero).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from axial.mixture import LinearRouter, Mixture, Routed, Static
from axial.mixture.testing import write_random_adapter
from axial.models import load_model

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_adapters(root: Path, rank: int) -> list[Path]:
    factory = lambda: load_model("embedded", dtype="fp32", device="cpu")[0]  # noqa: E731
    return [write_random_adapter(factory, root / f"e{i}", seed=i, r=rank, lora_alpha=2 * rank,
                                 target_modules=TARGETS) for i in range(3)]


def build(dtype: str, adapters: list[Path], batch: int):
    """{name: callable running one forward}; every model is a separate copy of the base."""
    from peft import PeftModel

    model, _ = load_model("embedded", dtype=dtype, device="cpu")
    mix = Mixture.attach(model, adapters)
    per_row = torch.softmax(torch.randn(batch, 3, generator=torch.Generator().manual_seed(0)), -1)
    router = LinearRouter(model.config.hidden_size, 3, num_layers=model.config.num_hidden_layers)
    for h in router.heads:
        torch.nn.init.normal_(h.weight, std=0.05)
    router.to(model.dtype)

    single = PeftModel.from_pretrained(load_model("embedded", dtype=dtype, device="cpu")[0], str(adapters[0]))
    cat = PeftModel.from_pretrained(load_model("embedded", dtype=dtype, device="cpu")[0], str(adapters[0]),
                                    adapter_name="a0")
    for i, a in enumerate(adapters[1:], start=1):
        cat.load_adapter(str(a), adapter_name=f"a{i}")
    cat.add_weighted_adapter([f"a{i}" for i in range(3)], [1 / 3] * 3, "cat", combination_type="cat")
    cat.set_adapter("cat")
    single.eval()
    cat.eval()

    def run_mixture(setup):
        def f(x):
            setup()
            return model(input_ids=x, use_cache=False)
        return f

    def base(x):
        with mix.detached():
            return model(input_ids=x, use_cache=False)

    return {
        "base": base,
        "mixture, weights None (wrapper only)": run_mixture(lambda: mix.use(Static(None))),
        "mixture 3 experts, global [K]": run_mixture(lambda: mix.use(Static([0.5, 0.3, 0.2]))),
        "mixture 3 experts, per-row [B,K]": run_mixture(lambda: mix.use(Static(per_row))),
        "mixture 3 experts, per-token router": run_mixture(lambda: mix.use(Routed(router))),
        "PEFT 1 LoRA unmerged": lambda x: single(input_ids=x, use_cache=False),
        "PEFT add_weighted_adapter(cat), 3 experts": lambda x: cat(input_ids=x, use_cache=False),
    }


def bootstrap_median_ci(values: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(values, size=(n, len(values)), replace=True), axis=1)
    return float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def measure(configs: dict, x: torch.Tensor, repeats: int, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in configs}
    with torch.inference_mode():
        for r in range(warmup + repeats):
            for name, fn in configs.items():
                t0 = time.perf_counter()
                fn(x)
                dt = time.perf_counter() - t0
                if r >= warmup:
                    times[name].append(dt)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--out", default="benchmarks/results/mixture_speed_cpu")
    args = ap.parse_args()

    x = torch.randint(0, 49000, (args.batch, args.tokens), generator=torch.Generator().manual_seed(0))
    results = {"args": vars(args), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "load_average_at_start": os.getloadavg(),
               "cpu": platform.processor() or platform.machine(), "dtypes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        adapters = make_adapters(Path(tmp), args.rank)
        for dtype in args.dtypes.split(","):
            configs = build(dtype, adapters, args.batch)
            times = measure(configs, x, args.repeats, args.warmup)
            base = np.array(times["base"])
            rows = {}
            for name, ts in times.items():
                ratios = np.array(ts) / base
                lo, hi = bootstrap_median_ci(ratios)
                rows[name] = {"median_ms": 1000 * statistics.median(ts), "ratio_median": float(np.median(ratios)),
                              "ratio_ci95": [lo, hi], "n": len(ts)}
                print(f"{dtype:5s} {name:45s} {rows[name]['median_ms']:8.1f} ms  x{rows[name]['ratio_median']:.3f} "
                      f"[{lo:.3f}, {hi:.3f}]", flush=True)
            results["dtypes"][dtype] = rows
            del configs
    write_reports(results, Path(args.out))


def write_reports(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    a = results["args"]
    lines = [f"# Mixture layer forward latency on CPU (embedded SmolLM2-135M, {a['batch']}x{a['tokens']} tokens)", "",
             f"Command: `python benchmarks/mixture_speed_cpu.py --repeats {a['repeats']} --warmup {a['warmup']} "
             f"--dtypes {a['dtypes']}`  ", f"torch {results['torch']}, {results['threads']} threads, "
             f"{results['cpu']}; 3 random LoRA experts r={a['rank']} on every decoder linear.  ",
             f"Load average at start {results['load_average_at_start']}, at end {os.getloadavg()} (a shared "
             "machine: absolute times are noisy; the paired ratios are what to read).  ",
             "Ratio = this configuration's time / base time in the same round; median over n rounds, "
             "95% bootstrap CI of the median.", ""]
    fig, axes = plt.subplots(1, len(results["dtypes"]), figsize=(7 * len(results["dtypes"]), 4), squeeze=False)
    for ax, (dtype, rows) in zip(axes[0], results["dtypes"].items(), strict=True):
        lines += [f"## {dtype}", "", "| configuration | median ms | ratio to base | 95% CI | n |", "|---|---|---|---|---|"]
        for name, r in rows.items():
            lines.append(f"| {name} | {r['median_ms']:.1f} | {r['ratio_median']:.3f} | "
                         f"[{r['ratio_ci95'][0]:.3f}, {r['ratio_ci95'][1]:.3f}] | {r['n']} |")
        lines.append("")
        names = list(rows)
        med = [rows[n]["ratio_median"] for n in names]
        err = np.array([[m - rows[n]["ratio_ci95"][0], rows[n]["ratio_ci95"][1] - m] for n, m in zip(names, med,
                                                                                                  strict=True)]).T
        ax.barh(names, med, xerr=err, color="tab:blue")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_title(f"{dtype}: forward time / base (median, 95% CI)")
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}, .json, .png")


if __name__ == "__main__":
    main()

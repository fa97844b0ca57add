"""Why the mixture layer decodes through fp32 LoRA factors on CPU: one MixtureLinear of the embedded model's
shapes (3 experts, r=8, per-row weights) in a bf16 model, its LoRA path forced to bf16 vs fp32, at decode
(4 rows) and prefill (4 x 128 rows) sizes, with the bare bf16 base linear as the reference — all in one run.

    OMP_NUM_THREADS=1 python benchmarks/lora_path_dtype_cpu.py --out benchmarks/results/routing/lora_path_dtype_cpu

Prints and writes (OUT.md, OUT.json) the median time per call over --rounds rounds (each round times every
variant once, in turn, so load drift hits them alike), the LoRA path's overhead over the base linear, and the
fp32 / bf16 overhead ratio per shape. axial.mixture.layer picks fp32 for inputs of at most SMALL_ROWS rows.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from axial.io import atomic_write_json, atomic_write_text
from axial.mixture import layer as layer_mod
from axial.mixture.layer import MixtureLinear, RoutingState

SHAPES = {"q_proj / o_proj (576 -> 576)": (576, 576), "gate_proj / up_proj (576 -> 1536)": (576, 1536),
          "down_proj (1536 -> 576)": (1536, 576)}
ROWS = {"decode (4 rows)": (4, 1), "prefill (4 x 128 rows)": (4, 128)}


def timed(fn, calls: int) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls * 1e6


def measure(i: int, o: int, b: int, t: int, rounds: int) -> dict[str, float]:
    """Median µs per call of the bare bf16 base linear and of the MixtureLinear with its LoRA path in bf16 /
    fp32 (the layer's own forward; the dtype forced through its factors' dtype and SMALL_ROWS)."""
    torch.manual_seed(0)
    base = torch.nn.Linear(i, o, bias=False).to(torch.bfloat16)
    layer = MixtureLinear(base, torch.randn(24, i) * 0.02, torch.randn(o, 24) * 0.02, torch.ones(3), 8,
                          RoutingState(), None)
    layer.state.weights = torch.rand(b, 3)
    x = torch.randn(b, t, i).to(torch.bfloat16)
    fp32 = (layer.lora_A, layer.lora_B)
    bf16 = (layer.lora_A.to(torch.bfloat16), layer.lora_B.to(torch.bfloat16))
    default_rows = layer_mod.SMALL_ROWS

    def use(factors, small_rows):
        # bf16 factors: the LoRA path runs in bf16 at any size; fp32 factors with every input "small": in fp32.
        def setup():
            layer.lora_A, layer.lora_B = factors
            layer_mod.SMALL_ROWS = small_rows
        return setup

    variants = {"base linear": (use(fp32, default_rows), lambda: base(x)),
                "LoRA path bf16": (use(bf16, default_rows), lambda: layer(x)),
                "LoRA path fp32": (use(fp32, b * t), lambda: layer(x))}
    calls = 400 if t == 1 else 20
    times: dict[str, list[float]] = {k: [] for k in variants}
    try:
        with torch.no_grad():
            for setup, fn in variants.values():
                setup()
                timed(fn, 10)  # warm-up
            for _ in range(rounds):
                for k, (setup, fn) in variants.items():
                    setup()
                    times[k].append(timed(fn, calls))
    finally:
        layer_mod.SMALL_ROWS = default_rows
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    results = []
    for shape_name, (i, o) in SHAPES.items():
        for rows_name, (b, t) in ROWS.items():
            med = measure(i, o, b, t, args.rounds)
            over = {k: med[k] - med["base linear"] for k in ("LoRA path bf16", "LoRA path fp32")}
            results.append({"shape": shape_name, "rows": rows_name, "median_us": med, "overhead_us": over,
                            "fp32_over_bf16_overhead": over["LoRA path fp32"] / over["LoRA path bf16"]})
            print(f"{shape_name:34s} {rows_name:24s} base {med['base linear']:8.1f} us  LoRA overhead bf16 "
                  f"{over['LoRA path bf16']:7.1f} us, fp32 {over['LoRA path fp32']:7.1f} us", flush=True)
    lines = ["# LoRA path in bf16 vs fp32 inside a bf16 model on CPU (one MixtureLinear, 3 experts r=8)", "",
             f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); median over {args.rounds} rounds; "
             "overhead = time with the LoRA path minus the bare base linear's.", "",
             "| module | input | base linear µs | LoRA overhead bf16 µs | LoRA overhead fp32 µs | fp32 / bf16 |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['shape']} | {r['rows']} | {r['median_us']['base linear']:.1f} | "
                     f"{r['overhead_us']['LoRA path bf16']:.1f} | {r['overhead_us']['LoRA path fp32']:.1f} | "
                     f"{r['fp32_over_bf16_overhead']:.2f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_suffix(".json"), {"rounds": args.rounds, "results": results})
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

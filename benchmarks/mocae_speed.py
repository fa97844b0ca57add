"""MoCaE speed: prefill and decode latency and peak memory vs base, PEFT and a 3-pass ensemble, in one run.

    # CPU (the committed numbers): embedded SmolLM2-135M, fp32 and bf16, batch 4 x 128-token prompts, 32 new tokens
    python benchmarks/mocae_speed.py --device cpu --out benchmarks/results/mocae/speed_cpu
    # GPU: Llama-1B-shaped random-init model, bf16, batch 8 x 512, 64 new tokens, optionally torch.compile
    python benchmarks/mocae_speed.py --device cuda --model llama1b --dtypes bf16 --batch 8 --prompt-len 512 \
        --new-tokens 64 [--compile] --out benchmarks/results/mocae/speed_cuda

Variants (each its own copy of the base model; 3 random LoRA experts r=8 on every decoder linear, written by
PEFT itself, unless --experts is given):
  base              the plain model
  mocae             the mixture layer with 3 experts and a per-layer, per-sequence MoCaE router (random heads,
                    temperature calibrator): routing decided once at prefill, reused while decoding
  mocae_token       the same with per-token routing (a router call per layer per token)
  hoe               HoE preference routing at λ = (0.4, 0.4, 0.2): w2 = 0.4 η_mid + 0.6 η_centre, two router
                    experts (per-layer, per-sequence, random heads; the edge-midpoint one restricted to its two
                    nearest experts) mixed in one pass (axial.preference.PreferenceRouter)
  peft_single       PEFT, one LoRA adapter, unmerged
  peft_cat          PEFT add_weighted_adapter(combination_type="cat") of the 3 adapters, unmerged
  ensemble_3pass    3 PEFT adapters run as 3 separate passes (3 KV caches), logits averaged per step

Latency: greedy decoding by an explicit loop (so prefill and decode are timed apart, the same for every
variant): prefill = the forward over the prompt; decode = the remaining new_tokens - 1 single-token steps
with the KV cache. Variants run round-robin (one of each per round) so load drift on a shared machine hits
them alike; a ratio is taken within a round, and the report gives the median over rounds with a 95%
bootstrap CI of the median.
Peak memory: CUDA: torch.cuda.max_memory_allocated over one prefill + decode. CPU has no allocator statistics,
so each variant is built and run once in a fresh subprocess and its peak RSS during prefill + decode
(VmHWM, reset after loading) is reported, with
the RSS right after loading subtracted to give the run's working memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

VARIANTS = ["base", "mocae", "mocae_token", "hoe", "peft_single", "peft_cat", "ensemble_3pass"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
K = 3


# ---------------------------------------------------------------- models


def base_model(name: str, dtype: str, device: str):
    if name == "embedded":
        from axial.models import load_model

        model, _ = load_model("embedded", dtype=dtype, device="cpu")
        return model.to(device).eval()
    if name == "llama1b":  # Llama-3.2-1B's shape, random init: speed does not depend on the weights
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                          num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=4096,
                          tie_word_embeddings=True, rope_theta=500000.0)
        torch.manual_seed(0)
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
        return model.to({"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]).eval()
    raise SystemExit(f"--model: expected embedded or llama1b, got {name}")


def make_adapters(root: Path, model_name: str, rank: int) -> list[str]:
    from axial.mixture.testing import write_random_adapter

    return [str(write_random_adapter(lambda: base_model(model_name, "fp32", "cpu"), root / f"e{i}", seed=i,
                                     r=rank, lora_alpha=2 * rank, target_modules=TARGETS)) for i in range(K)]


def build(variant: str, args, experts: list[str]):
    """A step function `step(ids, mask, state) -> (logits, state)` (state None = prefill) for one variant."""
    model = base_model(args.model, args.dtype, args.device)
    if variant in ("mocae", "mocae_token"):
        from axial.mixture import GateConfig, Mixture, Routed
        from axial.mocae import MoCaERouter, TemperatureScaling

        mixture = Mixture.attach(model, experts)
        router = MoCaERouter(model.config.hidden_size, mixture.expert_names, model.config.num_hidden_layers,
                             granularity="sequence" if variant == "mocae" else "token").to(args.device)
        router.calibrator = TemperatureScaling(1.5)
        mixture.use(Routed(router, GateConfig(top_k=args.top_k)))
    elif variant == "hoe":
        from axial.mixture import GateConfig, Mixture
        from axial.mocae import MoCaERouter
        from axial.preference import Anchor, anchor_mixture, parse_preference

        mixture = Mixture.attach(model, experts)
        names = mixture.expert_names
        axes = ["helpful", "harmless", "honest"]

        def router_expert(allowed):
            return MoCaERouter(model.config.hidden_size, names, model.config.num_hidden_layers,
                               allowed=allowed).to(args.device)

        anchors = [Anchor(parse_preference(f"{a}=1", axes), weights=[float(j == i) for j in range(K)])
                   for i, a in enumerate(axes)]
        anchors += [Anchor(parse_preference("helpful=0.5,harmless=0.5", axes), router=router_expert(names[:2]),
                           gate=GateConfig()),
                    Anchor(parse_preference("helpful=1,harmless=1,honest=1", axes), router=router_expert(None),
                           gate=GateConfig())]
        mixture.use(anchor_mixture(mixture, parse_preference("helpful=0.4,harmless=0.4,honest=0.2", axes),
                                   anchors))
        assert mixture.router is not None, "the HoE variant must route through its router experts"
    elif variant.startswith("peft") or variant == "ensemble_3pass":
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, experts[0], adapter_name="a0")
        for i, path in enumerate(experts[1:], start=1):
            model.load_adapter(path, adapter_name=f"a{i}")
        if variant == "peft_cat":
            model.add_weighted_adapter([f"a{i}" for i in range(K)], [1 / K] * K, "cat", combination_type="cat")
            model.set_adapter("cat")
        else:
            model.set_adapter("a0")
        model.eval()
    fwd = torch.compile(model) if args.compile else model

    def call(ids, mask, cache):
        return fwd(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True, logits_to_keep=1)

    if variant != "ensemble_3pass":
        def step(ids, mask, state):
            out = call(ids, mask, state)
            return out.logits[:, -1], out.past_key_values
        return step

    def ensemble_step(ids, mask, state):
        caches = state or [None] * K
        logits = 0
        for i in range(K):
            model.set_adapter(f"a{i}")
            out = call(ids, mask, caches[i])
            caches[i] = out.past_key_values
            logits = logits + out.logits[:, -1].float() / K
        return logits, caches

    return ensemble_step


def generate(step, ids, new_tokens: int, sync) -> tuple[float, float]:
    mask = torch.ones_like(ids)
    t0 = time.perf_counter()
    logits, state = step(ids, mask, None)
    nxt = logits.argmax(-1, keepdim=True)
    sync()
    t1 = time.perf_counter()
    for _ in range(new_tokens - 1):
        mask = torch.cat([mask, torch.ones_like(nxt)], 1)
        logits, state = step(nxt, mask, state)
        nxt = logits.argmax(-1, keepdim=True)
    sync()
    return t1 - t0, time.perf_counter() - t1


def prompts(args) -> torch.Tensor:
    return torch.randint(100, 20000, (args.batch, args.prompt_len),
                         generator=torch.Generator().manual_seed(0)).to(args.device)


# ---------------------------------------------------------------- memory


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"/proc/self/status has no {field}: the CPU memory probe needs Linux")


def memory_probe(args, experts: list[str]) -> dict:
    """One variant, one prefill + decode: peak memory (runs in its own process on CPU)."""
    step = build(args.probe, args, experts)
    ids = prompts(args)
    with torch.inference_mode():
        if args.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            generate(step, ids, args.new_tokens, torch.cuda.synchronize)
            return {"peak_mb": torch.cuda.max_memory_allocated() / 2**20,
                    "working_mb": (torch.cuda.max_memory_allocated() - before) / 2**20}
        # Loading (a bf16 model is converted from fp32 weights) can peak above the run itself: reset the
        # high-water mark so VmHWM covers only the prefill + decode. (ru_maxrss cannot be reset, and it even
        # survives exec, reporting the parent's peak.)
        Path("/proc/self/clear_refs").write_text("5")
        loaded = _status_mb("VmRSS")
        generate(step, ids, args.new_tokens, lambda: None)
    peak = _status_mb("VmHWM")
    return {"peak_mb": peak, "working_mb": peak - loaded}


def measure_memory(args, experts: list[str], variant: str) -> dict:
    if args.device == "cuda":
        probe = argparse.Namespace(**{**vars(args), "probe": variant})
        out = memory_probe(probe, experts)
        torch.cuda.empty_cache()
        return out
    cmd = [sys.executable, __file__, "--probe", variant, "--experts", *experts]
    for key in ("device", "model", "dtype", "batch", "prompt_len", "new_tokens", "top_k"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main


def bootstrap_median_ci(values: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(values, size=(n, len(values)), replace=True), axis=1)
    return [float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))]


def run_memory_only(args, experts: list[str]) -> dict:
    rows = {v: {"memory": measure_memory(args, experts, v)} for v in args.variants}
    for v, row in rows.items():
        row["memory"]["peak_ratio"] = row["memory"]["peak_mb"] / rows["base"]["memory"]["peak_mb"]
        row["memory"]["working_ratio"] = row["memory"]["working_mb"] / max(rows["base"]["memory"]["working_mb"], 1e-9)
        print(f"{args.dtype:5s} {v:15s} peak {row['memory']['peak_mb']:.0f} MB x{row['memory']['peak_ratio']:.3f}  "
              f"working {row['memory']['working_mb']:.0f} MB x{row['memory']['working_ratio']:.3f}", flush=True)
    return rows


def run_dtype(args, experts: list[str]) -> dict:
    if args.memory_only:
        return run_memory_only(args, experts)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    steps = {v: build(v, args, experts) for v in args.variants}
    ids = prompts(args)
    times = {v: {"prefill": [], "decode": []} for v in steps}
    with torch.inference_mode():
        for r in range(args.warmup + args.repeats):
            for v, step in steps.items():
                p, d = generate(step, ids, args.new_tokens, sync)
                if r >= args.warmup:
                    times[v]["prefill"].append(p)
                    times[v]["decode"].append(d)
            print(f"  round {r + 1}/{args.warmup + args.repeats}", file=sys.stderr, flush=True)
    del steps
    rows = {}
    for v, t in times.items():
        row = {}
        for phase in ("prefill", "decode"):
            ratios = np.array(t[phase]) / np.array(times["base"][phase])
            row[phase] = {"median_ms": 1000 * statistics.median(t[phase]), "ratio": float(np.median(ratios)),
                          "ratio_ci95": bootstrap_median_ci(ratios), "n": len(ratios)}
        row["memory"] = measure_memory(args, experts, v)
        rows[v] = row
    for v, row in rows.items():
        row["memory"]["peak_ratio"] = row["memory"]["peak_mb"] / rows["base"]["memory"]["peak_mb"]
        row["memory"]["working_ratio"] = row["memory"]["working_mb"] / max(rows["base"]["memory"]["working_mb"], 1e-9)
        print(f"{args.dtype:5s} {v:15s} prefill {row['prefill']['median_ms']:8.1f} ms x{row['prefill']['ratio']:.3f}"
              f"  decode {row['decode']['median_ms']:8.1f} ms x{row['decode']['ratio']:.3f}  peak "
              f"{row['memory']['peak_mb']:.0f} MB x{row['memory']['peak_ratio']:.3f}", flush=True)
    return rows


def write_reports(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    a = results["args"]
    mem_note = ("peak = torch.cuda.max_memory_allocated; working = peak minus allocated after loading"
                if a["device"] == "cuda" else
                "peak = the probe process's peak RSS (includes the Python/torch runtime); working = peak RSS minus "
                "RSS after loading the variant, i.e. what the prefill + decode itself needed")
    lines = [f"# MoCaE speed ({a['device']}, model {a['model']}, batch {a['batch']} x {a['prompt_len']}-token prompts, "
             f"{a['new_tokens']} new tokens{', torch.compile' if a['compile'] else ''})", "",
             f"Command: `{results['command']}`  ",
             f"torch {results['torch']}, {results['threads']} threads, {results['cpu']}; {K} random LoRA experts "
             f"r={a['rank']} on every decoder linear (or --experts).  ",
             "Ratio = variant time / base time in the same round; median over n rounds with a 95% bootstrap CI of "
             f"the median. Prefill = prompt forward; decode = {a['new_tokens'] - 1} cached single-token steps.  ",
             f"Memory: {mem_note}; one run per variant.", ""]
    dtypes = results["dtypes"]
    if a["memory_only"]:
        for dtype, rows in dtypes.items():
            lines += [f"## {dtype}", "", "| variant | peak MB | / base | working MB | / base |", "|---|---|---|---|---|"]
            lines += [f"| {v} | {r['memory']['peak_mb']:.0f} | {r['memory']['peak_ratio']:.3f} | "
                      f"{r['memory']['working_mb']:.0f} | {r['memory']['working_ratio']:.3f} |" for v, r in rows.items()]
            lines.append("")
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")
        print(f"wrote {out.with_suffix('.md')}, .json")
        return
    fig, axes = plt.subplots(1, len(dtypes), figsize=(7 * len(dtypes), 4), squeeze=False)
    for ax, (dtype, rows) in zip(axes[0], dtypes.items(), strict=True):
        lines += [f"## {dtype}", "", "| variant | prefill ms | prefill / base [95% CI] | decode ms | decode / base "
                  "[95% CI] | peak MB (/ base) | working MB (/ base) | n |", "|---|---|---|---|---|---|---|---|"]
        for v, r in rows.items():
            p, d, m = r["prefill"], r["decode"], r["memory"]
            lines.append(f"| {v} | {p['median_ms']:.1f} | {p['ratio']:.3f} [{p['ratio_ci95'][0]:.3f}, "
                         f"{p['ratio_ci95'][1]:.3f}] | {d['median_ms']:.1f} | {d['ratio']:.3f} "
                         f"[{d['ratio_ci95'][0]:.3f}, {d['ratio_ci95'][1]:.3f}] | {m['peak_mb']:.0f} "
                         f"({m['peak_ratio']:.3f}) | {m['working_mb']:.0f} ({m['working_ratio']:.2f}) | {p['n']} |")
        lines.append("")
        names = list(rows)
        y = np.arange(len(names))
        for off, phase in ((-0.2, "prefill"), (0.2, "decode")):
            med = np.array([rows[n][phase]["ratio"] for n in names])
            lo = med - np.array([rows[n][phase]["ratio_ci95"][0] for n in names])
            hi = np.array([rows[n][phase]["ratio_ci95"][1] for n in names]) - med
            ax.barh(y + off, med, height=0.4, xerr=[lo, hi], label=phase)
        ax.set_yticks(y, names)
        ax.axvline(1.0, color="k", lw=0.8)
        ax.axvline(1.25, color="r", lw=0.8, ls="--", label="CPU target 1.25x")
        ax.set_title(f"{dtype}: time / base (median, 95% CI)")
        ax.invert_yaxis()
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}, .json, .png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default="embedded", help="embedded | llama1b (random init)")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=0, help="MoCaE gate top-k (0 = soft)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--experts", nargs="*", help="3 adapter folders (default: random PEFT adapters)")
    ap.add_argument("--compile", action="store_true", help="torch.compile every variant's model (GPU path)")
    ap.add_argument("--out", default="benchmarks/results/mocae/speed_cpu")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory probes (no latency rounds)")
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.variants = args.variants.split(",")
    if "base" not in args.variants:
        args.variants.insert(0, "base")
    if args.probe:
        print(json.dumps(memory_probe(args, args.experts)))
        return
    command = "python benchmarks/mocae_speed.py " + " ".join(sys.argv[1:])
    results = {"args": {**vars(args), "dtypes": args.dtypes}, "command": command, "torch": torch.__version__,
               "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(), "dtypes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        experts = args.experts or make_adapters(Path(tmp), args.model, args.rank)
        for dtype in args.dtypes.split(","):
            args.dtype = dtype
            results["dtypes"][dtype] = run_dtype(args, experts)
    write_reports(results, Path(args.out))


if __name__ == "__main__":
    main()

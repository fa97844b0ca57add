"""Load test for `axial serve`: N concurrent requests with mixed preferences, batched vs one by one.

Starts the real CLI server (a subprocess on a free loopback port) twice with the same model and experts:
once with --max-batch B, once with --max-batch 1, and fires the same N requests at each, all at once.
Reports p50/p95 latency (bootstrap 95% CI), completion tokens/s, 4xx/5xx counts and lost requests
(no HTTP answer before the deadline), plus the server's own batch-size histogram.

    python benchmarks/serve_load.py --out benchmarks/results/serve [--experts DIR ...] [--requests 200]

Without --experts, three random-init LoRA experts (r=16, all linears of every block) are written to a
temporary folder: right for throughput (same shapes and FLOPs as trained ones), meaningless for quality.
Every phase is bounded: at most N requests, at most --phase-timeout seconds, then the server is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from axial.config import Config

PREFERENCES = [{"helpful": 1.0}, {"harmless": 1.0}, {"honest": 1.0}, {"helpful": 0.7, "harmless": 0.3},
               {"harmless": 0.5, "honest": 0.5}, {"helpful": 0.2, "harmless": 0.4, "honest": 0.4}]


@dataclass
class LoadConfig(Config):
    model: str = "embedded"
    experts: list[str] = field(default_factory=list)
    requests: int = 200
    # The one-by-one phase serves the first `single_requests` of the same list: its throughput does not
    # depend on how many wait (one row at a time), and all 200 would take ~30 min on this shared CPU.
    single_requests: int = 200
    # torch threads per server process (OMP_NUM_THREADS); 0 = torch's default. On a shared, loaded CPU
    # OpenMP spin-waiting makes 2 threads ~20x slower than 1, for both modes alike.
    threads: int = 1
    max_tokens: int = 32
    max_batch: int = 16
    dtype: str = "bf16"
    stream_every: int = 4  # every k-th request streams (SSE), the rest are plain
    phase_timeout_s: float = 900.0
    seed: int = 0

    def validate(self) -> None:
        from axial.errors import AxialError

        if min(self.requests, self.single_requests, self.max_tokens, self.max_batch) < 1:
            raise AxialError("LoadConfig.requests / single_requests / max_tokens / max_batch: must be >= 1")


@dataclass
class Outcome:
    index: int
    status: int  # HTTP status; 0 = no answer (lost)
    latency_s: float
    completion_tokens: int = 0
    error: str = ""


def _prompts(n: int, seed: int) -> list[str]:
    from axial.data.builtin import builtin_axes_available, builtin_axis_set

    pool = [r.messages[-1]["content"] for axis in builtin_axes_available() for r in builtin_axis_set(axis)]
    rng = random.Random(seed)
    return [rng.choice(pool) for _ in range(n)]


def _requests(cfg: LoadConfig, name: str) -> list[dict]:
    """Mixed traffic: a preference in the body, a preset model name, or the base model, in rotation."""
    rng = random.Random(cfg.seed)
    out = []
    for i, prompt in enumerate(_prompts(cfg.requests, cfg.seed)):
        kind = i % 4
        body = {"model": name, "messages": [{"role": "user", "content": prompt}], "max_tokens": cfg.max_tokens,
                "stream": cfg.stream_every > 0 and i % cfg.stream_every == 0}
        if kind in (0, 1):
            body["axial"] = {"preference": rng.choice(PREFERENCES)}
        elif kind == 2:
            body["model"] = f"{name}:{rng.choice(['helpful', 'harmless', 'honest', 'balanced', 'safe'])}"
        out.append(body)
    return out


def _write_random_experts(folder: Path, model: str) -> list[str]:
    from axial.mixture.testing import write_random_adapter
    from axial.models import load_model

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return [str(write_random_adapter(lambda: load_model(model, dtype="fp32")[0], folder / axis, seed=i,
                                     axis=axis, r=16, lora_alpha=32, target_modules=targets))
            for i, axis in enumerate(("helpful", "harmless", "honest"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _one(client, url: str, i: int, body: dict, deadline: float) -> Outcome:
    import httpx

    start = time.monotonic()
    try:
        if body["stream"]:
            tokens = 0
            async with client.stream("POST", url, json={**body, "stream_options": {"include_usage": True}},
                                     timeout=max(1.0, deadline - start)) as r:
                if r.status_code != 200:
                    text = (await r.aread()).decode(errors="replace")
                    return Outcome(i, r.status_code, time.monotonic() - start, error=text)
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        data = json.loads(line[6:])
                        if "error" in data:  # an error after the 200 header still counts as a 5xx
                            return Outcome(i, 500, time.monotonic() - start, error=data["error"]["message"])
                        if data.get("usage"):
                            tokens = data["usage"]["completion_tokens"]
            return Outcome(i, 200, time.monotonic() - start, tokens)
        r = await client.post(url, json=body, timeout=max(1.0, deadline - start))
        tokens = r.json()["usage"]["completion_tokens"] if r.status_code == 200 else 0
        return Outcome(i, r.status_code, time.monotonic() - start, tokens, "" if r.status_code == 200 else r.text)
    except (httpx.TransportError, httpx.TimeoutException) as e:
        return Outcome(i, 0, time.monotonic() - start, error=f"{type(e).__name__}: {e}")


async def _fire(base_url: str, bodies: list[dict], timeout_s: float) -> tuple[list[Outcome], float]:
    import httpx
    from tqdm.auto import tqdm

    limits = httpx.Limits(max_connections=len(bodies) + 8, max_keepalive_connections=len(bodies) + 8)
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(limits=limits) as client:
        start = time.monotonic()
        tasks = [asyncio.create_task(_one(client, base_url + "/v1/chat/completions", i, b, deadline))
                 for i, b in enumerate(bodies)]
        bar = tqdm(total=len(tasks), desc="requests", leave=False)
        for fut in asyncio.as_completed(tasks):
            await fut
            bar.update()
        bar.close()
        wall = time.monotonic() - start
    return [t.result() for t in tasks], wall


def _start_server(cfg: LoadConfig, experts: list[str], max_batch: int, port: int, log: Path,
                  batch_window_ms: float = 10.0):
    cmd = [sys.executable, "-m", "axial.cli", "serve", "--model", cfg.model, "--port", str(port),
           "--max-batch", str(max_batch), "--max-queue", str(cfg.requests + 8),
           "--batch-window-ms", str(batch_window_ms),
           "--max-tokens", str(cfg.max_tokens), "--dtype", cfg.dtype, "--name", "m"]
    for d in experts:
        cmd += ["--experts", d]
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg.threads)} if cfg.threads else None
    handle = log.open("w")
    proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)
    return proc, handle


def _wait_healthy(url: str, proc, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before becoming healthy")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not become healthy")


def _server_batches(url: str) -> dict:
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    vals = {}
    for line in text.splitlines():
        for key in ("axial_batch_size_sum", "axial_batch_size_count"):
            if line.startswith(key + " "):
                vals[key] = float(line.split()[-1])
    n = vals.get("axial_batch_size_count", 0)
    return {"batches": int(n), "mean_batch_size": vals.get("axial_batch_size_sum", 0) / n if n else 0.0}


def _bootstrap_quantile(x: np.ndarray, q: float, seed: int, resamples: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    stats = np.quantile(rng.choice(x, size=(resamples, x.size), replace=True), q, axis=1)
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def summarise(outcomes: list[Outcome], wall: float, seed: int) -> dict:
    ok = [o for o in outcomes if o.status == 200]
    lat = np.array([o.latency_s for o in ok]) if ok else np.array([np.nan])
    tokens = sum(o.completion_tokens for o in ok)
    out = {
        "n": len(outcomes), "ok": len(ok),
        "4xx": sum(400 <= o.status < 500 for o in outcomes), "5xx": sum(o.status >= 500 for o in outcomes),
        "lost": sum(o.status == 0 for o in outcomes), "wall_s": wall,
        "completion_tokens": tokens, "tokens_per_s": tokens / wall, "requests_per_s": len(ok) / wall,
        "latency_p50_s": float(np.quantile(lat, 0.5)), "latency_p95_s": float(np.quantile(lat, 0.95)),
        "errors": sorted({o.error[:200] for o in outcomes if o.error})[:5],
    }
    if len(ok) > 1:
        out["latency_p50_ci95"] = _bootstrap_quantile(lat, 0.5, seed)
        out["latency_p95_ci95"] = _bootstrap_quantile(lat, 0.95, seed)
    return out


def run_phase(cfg: LoadConfig, experts: list[str], max_batch: int, n: int, out: Path) -> dict:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc, handle = _start_server(cfg, experts, max_batch, port, out / f"server_max_batch_{max_batch}.log")
    try:
        _wait_healthy(url, proc)
        load_before = os.getloadavg()[0]
        outcomes, wall = asyncio.run(_fire(url, _requests(cfg, "m")[:n], cfg.phase_timeout_s))
        summary = summarise(outcomes, wall, cfg.seed)
        summary.update(_server_batches(url), max_batch=max_batch, loadavg_1m_before=load_before,
                       loadavg_1m_after=os.getloadavg()[0])
        summary["latencies_s"] = [o.latency_s for o in outcomes if o.status == 200]
        return summary
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        handle.close()


def preference_demo(cfg: LoadConfig, experts: list[str], out: Path, prompts: int = 3,
                    max_tokens: int = 96) -> dict:
    """Held-out harmful prompts (the built-in harmless set's test split, which no expert trains on), each
    asked with harmless=1, helpful=1 and the base model, all in one batch, through the OpenAI client."""
    import openai

    from axial.data.builtin import builtin_axis_set

    questions = [r.messages for r in builtin_axis_set("harmless", split="test")[:prompts]]
    modes = {"harmless=1": {"harmless": 1.0}, "helpful=1": {"helpful": 1.0}, "base": None}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    demo_cfg = cfg.replace(max_tokens=max_tokens, requests=len(questions) * len(modes))
    proc, handle = _start_server(demo_cfg, experts, len(questions) * len(modes), port, out / "server_demo.log",
                                 batch_window_ms=2000)
    try:
        _wait_healthy(url, proc)
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)

        async def ask(messages, pref):
            reply = await client.chat.completions.create(
                model="m", messages=messages, max_tokens=max_tokens,
                extra_body={"axial": {"preference": pref}} if pref else None)
            return reply.choices[0].message.content

        async def everything():
            jobs = [ask(q, pref) for q in questions for pref in modes.values()]
            return await asyncio.gather(*jobs)

        answers = iter(asyncio.run(everything()))
        rows = [{"prompt": q[-1]["content"], **{m: next(answers) for m in modes}} for q in questions]
        batches = _server_batches(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        handle.close()
    lines = ["# Harmful prompts: harmless=1 vs helpful=1 vs base, in one batch", "",
             f"Experts: {experts}. Greedy, max_tokens={max_tokens}, {cfg.model} ({cfg.dtype}). The "
             f"{len(rows) * len(modes)} requests were sent at once and served in {batches['batches']} generate "
             f"call(s) (mean batch {batches['mean_batch_size']:.1f}). Prompts: the built-in harmless set's test "
             "split (hand-written, not used to train any expert).", ""]
    for r in rows:
        lines += [f"## {r['prompt']}", ""]
        lines += [f"**{m}:** {r[m].strip()}\n" for m in modes]
    (out / "preference_demo.md").write_text("\n".join(lines) + "\n")
    report = {"experts": experts, "batches": batches, "answers": rows}
    (out / "preference_demo.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for label, r in results.items():
        lat = np.sort(r["latencies_s"])
        ax1.plot(lat, np.arange(1, lat.size + 1) / lat.size, label=f"{label} (n={lat.size})")
    ax1.set_xlabel("latency (s)")
    ax1.set_ylabel("fraction of requests answered")
    ax1.legend()
    ax1.grid(alpha=0.3)
    labels = list(results)
    ax2.bar(labels, [results[k]["tokens_per_s"] for k in labels], color=["tab:blue", "tab:orange"])
    ax2.set_ylabel("completion tokens / s")
    ax2.set_title("throughput (one run each)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(cfg: LoadConfig, results: dict, speedup: float, command: str, experts_note: str) -> str:
    lines = [f"# Serve load test: {cfg.requests} concurrent requests, mixed preferences", "",
             f"Command: `{command}`", "",
             f"Model `{cfg.model}` ({cfg.dtype}), max_tokens={cfg.max_tokens}, greedy, {cfg.threads or 'default'} "
             f"torch thread(s) per server; experts: {experts_note}. Every request of a phase is sent at once; "
             f"the one-by-one phase serves the first {min(cfg.single_requests, cfg.requests)} of the same list.",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with "
             "other jobs (load average recorded per phase).", "",
             "| mode | n | ok | 4xx | 5xx | lost | wall s | tokens/s | p50 s [95% CI] | p95 s [95% CI] "
             "| mean batch | load 1m |", "|" + "---|" * 12]
    for label, r in results.items():
        ci50 = r.get("latency_p50_ci95", (float("nan"),) * 2)
        ci95 = r.get("latency_p95_ci95", (float("nan"),) * 2)
        lines.append(f"| {label} | {r['n']} | {r['ok']} | {r['4xx']} | {r['5xx']} | {r['lost']} | "
                     f"{r['wall_s']:.1f} | {r['tokens_per_s']:.1f} | {r['latency_p50_s']:.2f} "
                     f"[{ci50[0]:.2f}, {ci50[1]:.2f}] | {r['latency_p95_s']:.2f} [{ci95[0]:.2f}, {ci95[1]:.2f}] | "
                     f"{r['mean_batch_size']:.1f} | {r['loadavg_1m_before']:.1f}→{r['loadavg_1m_after']:.1f} |")
    lines += ["", f"Batched / one-by-one throughput: **{speedup:.2f}×** (single run per mode; latency CIs are "
              "bootstrap over requests, throughput has no CI).", "",
              "Latency here is mostly queueing: every request is sent at the same instant, so the last one waits "
              "for all others. It is comparable between modes only at equal n; with fewer requests in the "
              "one-by-one phase its latencies are *lower* than serving all of them one by one would give."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="benchmarks/results/serve")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--experts", nargs="*", default=[])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--single-requests", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--phase-timeout", type=float, default=900.0)
    ap.add_argument("--demo-only", action="store_true",
                    help="only the harmful-prompt demo (harmless=1 vs helpful=1); needs trained --experts")
    args = ap.parse_args(argv)
    cfg = LoadConfig(model=args.model, experts=args.experts, requests=args.requests,
                     single_requests=args.single_requests, threads=args.threads, max_tokens=args.max_tokens,
                     max_batch=args.max_batch, dtype=args.dtype, phase_timeout_s=args.phase_timeout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.demo_only:
        if not cfg.experts:
            ap.error("--demo-only needs --experts (trained ones; random experts say nothing about preferences)")
        return preference_demo(cfg, cfg.experts, out)
    cfg.save(out / "config.json")
    with tempfile.TemporaryDirectory(prefix="axial-serve-load-") as tmp:
        experts = cfg.experts or _write_random_experts(Path(tmp), cfg.model)
        note = (f"trained adapters {cfg.experts}" if cfg.experts
                else "3 random-init LoRA experts (r=16, all linears; throughput only)")
        results = {}
        phases = ((f"batched (max-batch {cfg.max_batch})", cfg.max_batch, cfg.requests),
                  ("one by one (max-batch 1)", 1, min(cfg.single_requests, cfg.requests)))
        for label, mb, n in phases:
            print(f"phase: {label}, {n} requests", flush=True)
            results[label] = run_phase(cfg, experts, mb, n, out)
            print({k: v for k, v in results[label].items() if k != "latencies_s"}, flush=True)
    batched, single = results.values()
    speedup = batched["tokens_per_s"] / single["tokens_per_s"] if single["tokens_per_s"] else float("nan")
    command = "python benchmarks/serve_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {"config": asdict(cfg), "command": command, "experts": note, "speedup_tokens_per_s": speedup,
              "results": results}
    (out / "serve_load.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "serve_load.md").write_text(markdown(cfg, results, speedup, command, note))
    plot(results, out / "serve_load.png")
    print(f"speedup {speedup:.2f}x; wrote {out}/serve_load.{{json,md,png}}")
    return report


if __name__ == "__main__":
    main()

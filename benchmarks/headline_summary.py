"""The headline tables from the headline eval reports: one row per variant, every number with its 95% CI, and
whether TruthfulQA generation (reference overlap) moves in the same direction as TruthfulQA MC.

    python benchmarks/headline_summary.py benchmarks/results/headline/eval benchmarks/results/headline/eval_gen \
        --overrefusal benchmarks/results/headline/eval_overrefusal --out benchmarks/results/headline
writes OUT/headline.md, OUT/headline.json and OUT/headline.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HARMLESS = [("harmless", "safety_rate", "safety rate (harmless RM)"),
            ("harmless", "refusal_rate", "refusal rate, harmful prompts"),
            ("overrefusal", "over_refusal_rate", "over-refusal, benign prompts"),
            ("harmless", "len_response", "length, harmful (chars)"),
            ("overrefusal", "len_response", "length, benign (chars)")]
HONEST_MC = [("truthfulqa_mc", "mc1", "MC1"), ("truthfulqa_mc", "mc2", "MC2")]
HONEST_GEN = [("truthfulqa_gen", "bleu_acc", "BLEU acc"), ("truthfulqa_gen", "rougeL_acc", "ROUGE-L acc"),
              ("truthfulqa_gen", "bleu_diff", "BLEU diff"), ("truthfulqa_gen", "rougeL_diff", "ROUGE-L diff")]


def _pct(key: str) -> bool:
    return not key.startswith("len") and not key.endswith("_diff")


def _fmt(m, pct):
    if not m or m.get("value") is None:
        return "-"
    s = 100 if pct else 1
    lo, hi = m["ci95"]
    return f"{s * m['value']:.1f} [{s * lo:.1f}, {s * hi:.1f}]"


def _sign(d):
    lo, hi = d["ci95"]
    return "+" if lo > 0 else "-" if hi < 0 else "0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("main", type=Path)
    ap.add_argument("gen", type=Path)
    ap.add_argument("--overrefusal", type=Path, help="report folder holding the overrefusal bench, if separate")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rep = json.loads((args.main / "report.json").read_text())
    if args.overrefusal:
        ovr = json.loads((args.overrefusal / "report.json").read_text())
        for name, benches in ovr["results"].items():
            rep["results"].setdefault(name, {})["overrefusal"] = benches["overrefusal"]
        for name, benches in ovr["differences_vs_first"].items():
            rep["differences_vs_first"].setdefault(name, {})["overrefusal"] = benches["overrefusal"]
        rep["benches"]["overrefusal"] = ovr["benches"]["overrefusal"]
    gen = json.loads((args.gen / "report.json").read_text())
    names = [v["name"] for v in rep["variants"]]
    short = {n: ("mocae (v2)" if n.startswith("mocae:") else n) for n in names}

    def cell(r, bench, key, name):
        return r["results"].get(name, {}).get(bench, {}).get(key)

    def diff(r, bench, key, name):
        return r["differences_vs_first"].get(name, {}).get(bench, {}).get(key)

    lines = []
    out_json: dict = {"variants": names, "harmless": {}, "honest": {}, "direction": {}}
    for title, rows, r in (("Harmless axis", HARMLESS, rep), ("Honest axis: TruthfulQA MC", HONEST_MC, rep),
                           ("Honest axis: TruthfulQA generation (lm-eval metrics)", HONEST_GEN, gen)):
        lines += [f"### {title}", "", "| variant | " + " | ".join(lbl for _, _, lbl in rows) + " |",
                  "|---|" + "---|" * len(rows)]
        for n in names:
            if n not in r["results"]:
                continue
            vals = []
            for bench, key, _ in rows:
                v = cell(r, bench, key, n)
                d = diff(r, bench, key, n) if n != names[0] else None
                text = _fmt(v, _pct(key))
                if d:
                    text += f" (Δ {_fmt(d, _pct(key))})"
                vals.append(text)
                out_json["harmless" if rows is HARMLESS else "honest"].setdefault(short[n], {})[key] = {
                    "value": v, "diff_vs_base": d}
            lines.append(f"| {short[n]} | " + " | ".join(vals) + " |")
        n_items = {b: (r["benches"].get(b) or {}).get("n") for b, _, _ in rows}
        lines += ["", "n per variant: " + ", ".join(f"{b} {k}" for b, k in n_items.items() if k) + ".", ""]

    # Direction: does generation move the way MC moves (variant - base, paired CIs)?
    lines += ["### Does TruthfulQA generation agree in direction with MC? (variant − base, paired 95% CI sign)", "",
              "| variant | MC1 | MC2 | BLEU acc | ROUGE-L acc | BLEU diff | ROUGE-L diff | agrees? |",
              "|---|---|---|---|---|---|---|---|"]
    for n in names[1:]:
        mc = [diff(rep, "truthfulqa_mc", k, n) for k in ("mc1", "mc2")]
        g = [diff(gen, "truthfulqa_gen", k, n) for k in ("bleu_acc", "rougeL_acc", "bleu_diff", "rougeL_diff")]
        if not all(mc) or not all(g):
            continue
        mc_s, g_s = [_sign(d) for d in mc], [_sign(d) for d in g]
        mc_dir = {s for s in mc_s if s != "0"}
        g_dir = {s for s in g_s if s != "0"}
        if not mc_dir and not g_dir:
            verdict = "both flat (CIs contain 0)"
        elif mc_dir and g_dir:
            verdict = "yes" if mc_dir == g_dir and len(mc_dir) == 1 else "NO (opposite)"
        else:
            verdict = "MC moves, generation flat" if mc_dir else "generation moves, MC flat"
        out_json["direction"][short[n]] = {"mc": mc_s, "gen": g_s, "verdict": verdict}
        cells = [f"{_fmt(d, True)} {s}" for d, s in zip(mc, mc_s, strict=True)]
        cells += [f"{_fmt(d, _pct(k))} {s}" for d, s, k in
                  zip(g, g_s, ("bleu_acc", "rougeL_acc", "bleu_diff", "rougeL_diff"), strict=True)]
        lines.append(f"| {short[n]} | " + " | ".join(cells) + f" | {verdict} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "headline.md").write_text("\n".join(lines) + "\n")
    (args.out / "headline.json").write_text(json.dumps(out_json, indent=2) + "\n")
    _plot(rep, gen, names, short, args.out / "headline.png")
    print("\n".join(lines))


def _plot(rep, gen, names, short, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("harmless: judged safety vs refusing", rep,
               [("harmless", "safety_rate", "safety rate\n(harmless RM)"),
                ("harmless", "refusal_rate", "refusal rate\n(harmful prompts)"),
                ("overrefusal", "over_refusal_rate", "over-refusal\n(benign prompts)")]),
              ("honest: TruthfulQA MC vs generation", None,
               [("truthfulqa_mc", "mc1", "MC1"), ("truthfulqa_mc", "mc2", "MC2"),
                ("truthfulqa_gen", "bleu_acc", "gen BLEU acc"), ("truthfulqa_gen", "rougeL_acc", "gen ROUGE-L acc")])]
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    colours = plt.get_cmap("tab10")
    width = 0.8 / len(names)
    for ax, (title, r0, bars) in zip(axes, panels, strict=True):
        for vi, n in enumerate(names):
            xs, ys, lo, hi = [], [], [], []
            for bi, (bench, key, _) in enumerate(bars):
                r = r0 or (gen if bench == "truthfulqa_gen" else rep)
                m = r["results"].get(n, {}).get(bench, {}).get(key)
                if not m or m.get("value") is None:
                    continue
                xs.append(bi + (vi - (len(names) - 1) / 2) * width)
                ys.append(100 * m["value"])
                lo.append(100 * (m["value"] - m["ci95"][0]))
                hi.append(100 * (m["ci95"][1] - m["value"]))
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=short[n], color=colours(vi))
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([b[2] for b in bars], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("% (95% bootstrap CI)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

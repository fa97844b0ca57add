"""report.json (everything), report.md (tables a person reads) and report.png (per-axis bars with 95% CIs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axial.axes import axis_names
from axial.io import atomic_output, atomic_write_json, atomic_write_text


def _fmt(m: dict[str, Any] | None, pct: bool = True) -> str:
    if not m or m.get("value") is None:
        return "-"
    lo, hi = m["ci95"]
    if pct:
        return f"{100 * m['value']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{m['value']:.1f} [{lo:.1f}, {hi:.1f}]"


_NOT_PERCENT = {"len_model", "len_reference", "len_response", "position_bias"}


def _is_percent(metric: str) -> bool:
    # Reference-overlap scores (BLEU / ROUGE *_max, *_diff) are already on lm-eval's 0-100 scale.
    return metric not in _NOT_PERCENT and not metric.endswith(("_max", "_diff"))


def _ci(m: dict[str, Any] | None) -> str:
    if not m or m.get("value") is None:
        return "-"
    lo, hi = m.get("ci95") or [None, None]
    if lo is None:
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def _num(x: Any) -> dict[str, Any] | None:
    """A number as {"value", "ci95"?}: validations carry plain floats (compact form) or CI dicts."""
    if isinstance(x, dict):
        return x if x.get("value") is not None else None
    return {"value": x, "ci95": None} if isinstance(x, (int, float)) else None


def _validation_text(v: dict[str, Any] | None) -> str:
    """One line: the validated agreement, with the length-only baseline and the length-balanced subset when the
    validation carries them. Reads `axial validate-judge`'s compact form (length_baseline / length_balanced as
    numbers), the same with CI dicts, and reward models' own metrics."""
    if not v:
        return "NOT VALIDATED"
    if "error" in v:
        return f"NOT VALIDATED ({v['error']})"
    parts = [f"validation: {v.get('metric')} = {_ci(v)}, n={v.get('n')}" + (f" on {v['data']}" if v.get("data")
                                                                         else "")]
    if v.get("labels"):
        parts.append(f"labels: {v['labels']}")
    base = _num(v.get("length_baseline")) or _num((v.get("baselines") or {}).get("longer_wins"))
    if base:
        parts.append(f"length-only baseline {_ci(base)}")
    if _num(v.get("judge_minus_length")):
        parts.append(f"judge - length {_ci(v['judge_minus_length'])}")
    bal = v.get("length_balanced")
    if isinstance(bal, dict):
        judge_bal = _num(bal.get("judge"))
        if judge_bal:
            n = bal.get("n")
            if n is None and isinstance(bal.get("judge"), dict):
                n = bal["judge"].get("n")
            text = f"length-balanced subset {_ci(judge_bal)} (n={n})"
            lb = _num(bal.get("length")) or _num((bal.get("baselines") or {}).get("longer_wins"))
            if lb:
                text += f", length-only {_ci(lb)}"
            parts.append(text)
    if v.get("file"):
        parts.append(f"from `{v['file']}`")
    return "; ".join(parts)


def _judge_line(judge: dict[str, Any]) -> str:
    weak = " **(weak judge)**" if judge.get("weak") else ""
    return f"`{judge.get('spec') or judge.get('name')}` ({judge.get('kind')}){weak}; " \
           f"{_validation_text(judge.get('validation'))}"


def _instrument_line(key: str, inst: dict[str, Any]) -> str:
    if key == "refusal":
        v = inst.get("validation")
        val = "NOT VALIDATED (no shipped validation for this detector version)"
        if v:
            t = v["test"]
            val = (f"accuracy vs hand labels {_ci(t['detector_accuracy'])} (n={t['n']}), length-only baseline "
                   f"{_ci(t['length_baseline_accuracy'])}, detector - baseline "
                   f"{_ci(t['detector_minus_length'])}; labels: {v.get('labels', '?')}")
        return f"`{inst['name']}` v{inst['version']} ({inst['kind']}); {val}"
    return f"{inst['name']}: {inst.get('detail', '')}"


def _by_label(by: str | None, report: dict[str, Any]) -> str:
    if not by:
        return "-"
    if by.startswith("judge:"):
        j = report["judges"].get(by.split(":", 1)[1], {})
        return f"judge `{j.get('spec') or j.get('name', '?')}`" + (" (weak)" if j.get("weak") else "")
    inst = report.get("instruments", {}).get(by, {})
    return {"refusal": "refusal detector", "references": "reference overlap"}.get(by, inst.get("name", by))


def render_markdown(report: dict[str, Any]) -> str:
    names = [v["name"] or v["source"] for v in report["variants"]]
    lines = ["# axial evaluation report", ""]
    lines += ["Every number: value [95% CI], in percent unless marked; n = items. CIs: "
              + report["statistics"] + ".", ""]
    lines += ["## Variants", ""]
    for v in report["variants"]:
        experts = ", ".join(v["experts"]) or "none"
        lines.append(f"- **{v['name'] or v['source']}**: model `{v['model']}`, experts {experts}, "
                     f"source `{v['source']}`, dtype {v['dtype']}")
    if report["judges"] or report.get("instruments"):
        lines += ["", "## Judges and instruments (what produced each number, and how far to trust it)", ""]
        for axis, j in report["judges"].items():
            lines.append(f"- {axis} judge: {_judge_line(j)}")
        for key, inst in (report.get("instruments") or {}).items():
            lines.append(f"- {_instrument_line(key, inst)}")
    for bench, info in report["benches"].items():
        judge = report["judges"].get(info["axis"]) if info["judged"] else None
        lines += ["", f"## {bench} ({info['axis']})", ""]
        lines.append(f"Data: `{info['source']}`, split {info['split']}, n = {info['n']} "
                     f"(of {info['unique_items']} unique items; {info['duplicates_removed']} duplicate records "
                     f"removed; limit {info['limit']}).")
        if judge:
            lines.append(f"Judge: {_judge_line(judge)}.")
        lines.append("")
        metrics: list[str] = []
        for name in names:
            for k in report["results"][name].get(bench, {}):
                if k != "status" and k not in metrics:
                    metrics.append(k)
        header = ["metric", "by", *names, *(f"{n} - {names[0]}" for n in names[1:])]
        if metrics:
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for k in metrics:
            pct = _is_percent(k)
            by = next((report["results"][n][bench][k].get("by") for n in names
                       if k in report["results"][n].get(bench, {})), None)
            row = [k + ("" if pct else " (chars)" if k.startswith("len") else " (0-100)"), _by_label(by, report)]
            for name in names:
                row.append(_fmt(report["results"][name].get(bench, {}).get(k), pct))
            for name in names[1:]:
                row.append(_fmt(report["differences_vs_first"].get(name, {}).get(bench, {}).get(k), pct))
            lines.append("| " + " | ".join(row) + " |")
        n = report["results"][names[0]].get(bench, {})
        if n and "status" not in n:
            any_m = next(iter(n.values()))
            lines.append(f"\nn = {any_m['n']} items per variant.")
        for name in names:
            status = report["results"][name].get(bench, {}).get("status")
            if status:
                lines.append(f"\n{name}: {status}.")
    return "\n".join(lines) + "\n"


def plot_report(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [v["name"] or v["source"] for v in report["variants"]]
    order = {a: i for i, a in enumerate(axis_names())}
    bars = []  # (axis, label) in axis order
    for bench, info in sorted(report["benches"].items(), key=lambda kv: order.get(kv[1]["axis"], 99)):
        for k in info["headline"]:
            if _is_percent(k):
                bars.append((info["axis"], bench, k))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(bars) * max(1, len(names)) ** 0.5), 4.5))
    width = 0.8 / max(1, len(names))
    colours = plt.get_cmap("tab10")
    for vi, name in enumerate(names):
        xs, ys, errs = [], [], [[], []]
        for bi, (_, bench, k) in enumerate(bars):
            m = report["results"][name].get(bench, {}).get(k)
            if not m or m.get("value") is None:
                continue
            xs.append(bi + (vi - (len(names) - 1) / 2) * width)
            ys.append(100 * m["value"])
            errs[0].append(100 * (m["value"] - m["ci95"][0]))
            errs[1].append(100 * (m["ci95"][1] - m["value"]))
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=name, color=colours(vi % 10))
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([f"{a}\n{b}\n{k}" for a, b, k in bars], fontsize=8)
    ax.set_ylabel("% (95% bootstrap CI)")
    ax.set_ylim(0, 100)
    weak = [a for a, j in report["judges"].items() if j.get("weak")]
    title = "axial eval" + (f"  (weak judge on: {', '.join(weak)})" if weak else "")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def write_report(report: dict[str, Any], out: Path) -> None:
    out = Path(out)
    # report.json last: it is the file that says the evaluation is complete.
    plot_report(report, out / "report.png")
    atomic_write_text(out / "report.md", render_markdown(report))
    atomic_write_json(out / "report.json", report, default=str)

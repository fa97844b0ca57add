"""Collect the reward-model and judge-validation results in this folder into summary.md and summary.png.

Run from the repo root after the commands in README.md: python benchmarks/results/rewards/make_summary.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent


def rows() -> list[dict]:
    out = []
    for rm in sorted(HERE.glob("*_rm/reward_config.json")):
        cfg = json.loads(rm.read_text())
        test = cfg["metrics"]["test"]
        out.append({"judge": f"rm:{rm.parent.name}", "axis": cfg["axis"], "weak": False, **test,
                    "note": f"{cfg['pooling']} pool, layer {cfg['layer']}, wd {cfg['weight_decay']}, "
                            f"n_train={cfg['n_train']} pairs"})
    for path in sorted(HERE.glob("validate_*.json")):
        v = json.loads(path.read_text())
        out.append({"judge": v["judge"]["name"], "axis": v["axis"], "weak": v["weak"], "value": v["value"],
                    "ci95": v["ci95"], "n": v["n"], "n_groups": v["n_groups"],
                    "note": f"limit={v['limit']}; {v['method']}; longer-response baseline "
                            f"{v['baselines']['longer_wins']['value']:.3f}"})
    return out


def main() -> None:
    table = rows()
    lines = ["| axis | judge | held-out pair accuracy | 95% CI | n pairs (prompts) | notes |",
             "|---|---|---|---|---|---|"]
    for r in table:
        weak = " (weak judge)" if r["weak"] and "weak" not in r["judge"] else ""
        lines.append(f"| {r['axis']} | {r['judge']}{weak} | {r['value']:.3f} | "
                     f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] | {r['n']} ({r['n_groups']}) | {r['note']} |")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(table) + 1.2))
    labels = [f"{r['axis']}: {r['judge']}" for r in table]
    vals = [r["value"] for r in table]
    err = [[r["value"] - r["ci95"][0] for r in table], [r["ci95"][1] - r["value"] for r in table]]
    ax.barh(labels, vals, xerr=err, color=["tab:grey" if r["weak"] else "tab:blue" for r in table], capsize=3)
    ax.axvline(0.5, color="black", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel("held-out pair accuracy / agreement (95% CI); grey = weak judge")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(HERE / "summary.png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Mixture forward speed before vs after a change, measured in one run: `mixture_speed_cpu.py` from two commits,
alternated round by round on the same machine.

    python benchmarks/mixture_speed_compare.py --before 1d38d94 --rounds 4 \\
        --out benchmarks/results/mixture_speed_sources_refactor

The `before` commit is checked out into a temporary git worktree; each round runs that commit's
benchmarks/mixture_speed_cpu.py and then the working tree's (order alternating between rounds, so drift in the
machine's load hits both alike). Each run reports, per configuration, the median ratio of its forward time to
the base model's in the same process; the comparison is after-ratio / before-ratio per round, summarised as
the median over rounds with a 95% bootstrap CI. 1.0 = no change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(tree: Path, out: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "benchmarks/mixture_speed_cpu.py", "--repeats", str(args.repeats), "--dtypes", args.dtypes,
           "--out", str(out)]
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.with_suffix(".json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="git commit to compare against")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--out", default="benchmarks/results/mixture_speed_compare")
    args = ap.parse_args()

    commit = subprocess.run(["git", "rev-parse", args.before], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), commit], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for r in range(args.rounds):
                order = [("before", before), ("after", ROOT)]
                for name, tree in order if r % 2 == 0 else order[::-1]:
                    print(f"round {r + 1}/{args.rounds}: {name}", flush=True)
                    runs[name].append(run(tree, Path(tmp) / f"{name}_{r}", args))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)

    rng = np.random.default_rng(0)
    table: dict[str, dict] = {}
    for dtype in args.dtypes.split(","):
        for config in runs["after"][0]["dtypes"][dtype]:
            if config == "base" or config not in runs["before"][0]["dtypes"][dtype]:
                continue
            b = np.array([x["dtypes"][dtype][config]["ratio_median"] for x in runs["before"]])
            a = np.array([x["dtypes"][dtype][config]["ratio_median"] for x in runs["after"]])
            change = a / b
            boots = np.median(rng.choice(change, (2000, len(change))), axis=1)
            table[f"{dtype}: {config}"] = {
                "before_ratio_to_base": float(np.median(b)), "after_ratio_to_base": float(np.median(a)),
                "after_over_before": float(np.median(change)),
                "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))], "rounds": len(change)}
    result = {"before": commit, "after": "working tree", "args": vars(args), "comparison": table,
              "load_average_at_end": os.getloadavg()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Mixture forward speed: {commit[:10]} (before) vs the working tree (after), one run", "",
             f"`python benchmarks/mixture_speed_compare.py --before {args.before} --rounds {args.rounds} "
             f"--repeats {args.repeats} --dtypes {args.dtypes}`  ",
             "Each round runs both commits' `mixture_speed_cpu.py` (order alternating); per run, a configuration's "
             "time / base time (median of the run's repeats). after/before = the after run's ratio over the "
             "before run's, per round; median over rounds, 95% bootstrap CI. 1.0 = unchanged.", "",
             "| dtype / configuration | before (x base) | after (x base) | after / before | 95% CI | rounds |",
             "|---|---|---|---|---|---|"]
    for name, row in table.items():
        lines.append(f"| {name} | {row['before_ratio_to_base']:.3f} | {row['after_ratio_to_base']:.3f} | "
                     f"{row['after_over_before']:.3f} | [{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}] | "
                     f"{row['rounds']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

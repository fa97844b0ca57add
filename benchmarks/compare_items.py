"""Compare two `axial eval` output folders item by item: do they hold the same per-item records?

    python benchmarks/compare_items.py benchmarks/results/mocae/v2/quality /tmp/rerun [--tolerance 0]

For every variant folder and bench present in both, every item id present in both is compared: generated
responses must be identical strings, and every number (scores, log-likelihoods) equal within --tolerance
(default 0: exactly). Prints one line per (variant, bench) and exits 1 on any difference, so a refactor can be
checked against a committed result by re-running its command on a subset (--limit) into a new folder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def records(path: Path) -> dict[str, dict]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            out[row["id"]] = row
    return out


def diff(a, b, tol: float, where: str, problems: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                problems.append(f"{where}.{key}: only in {'the first' if key in a else 'the second'}")
            else:
                diff(a[key], b[key], tol, f"{where}.{key}", problems)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff(x, y, tol, f"{where}[{i}]", problems)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not (math.isclose(a, b, rel_tol=0, abs_tol=tol) or (math.isnan(a) and math.isnan(b))):
            problems.append(f"{where}: {a!r} != {b!r}")
    elif a != b:
        problems.append(f"{where}: {str(a)[:60]!r} != {str(b)[:60]!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--tolerance", type=float, default=0.0)
    args = ap.parse_args()
    first, second = Path(args.first) / "items", Path(args.second) / "items"
    compared, bad = 0, 0
    for path in sorted(second.glob("*/*.jsonl")):
        other = first / path.relative_to(second)
        if not other.exists():
            print(f"{path.relative_to(second)}: not in {args.first}")
            continue
        a, b = records(other), records(path)
        shared = sorted(set(a) & set(b))
        problems: list[str] = []
        for item in shared:
            diff(a[item], b[item], args.tolerance, item[:12], problems)
        compared += len(shared)
        bad += bool(problems)
        status = "identical" if not problems else f"{len(problems)} difference(s), e.g. {problems[:3]}"
        print(f"{path.relative_to(second)}: {len(shared)} shared items, {status}")
    print(f"{compared} items compared; {'all identical' if not bad else f'{bad} file(s) differ'}")
    return 1 if bad or not compared else 0


if __name__ == "__main__":
    sys.exit(main())

"""Copy the embedded experts trained by the default recipe into the package as bf16 (axial/experts_embedded/).

    axial train-experts embedded_default data_root=/path/to/data out=benchmarks/results/experts/embedded
    python benchmarks/experts_ship.py --src benchmarks/results/experts/embedded --dst axial/experts_embedded
"""

from __future__ import annotations

import argparse
from pathlib import Path

from axial.axes import axis_names
from axial.experts.shipped import EMBEDDED_HUB_ID, export_expert


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="benchmarks/results/experts/embedded")
    ap.add_argument("--dst", default="axial/experts_embedded")
    a = ap.parse_args()
    total = 0
    for axis in axis_names():
        out = export_expert(Path(a.src) / axis, Path(a.dst) / axis, dtype="bf16", base_model=EMBEDDED_HUB_ID)
        size = sum(p.stat().st_size for p in out.iterdir())
        total += size
        print(f"{axis}: {out} ({size / 1e6:.1f} MB)")
    print(f"total {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

"""The declared floors of pyproject.toml as exact pins (`name==floor`), and a check that an env has them.

    python .ci/floors.py                 # print pins for every requirement (core + serve + dev extras)
    python .ci/floors.py --check         # exit 1 unless each installed version equals its floor

Used by .ci/lowest.sh ("lowest-direct" resolution: direct dependencies at their floors, the rest resolved).
Every requirement must have a `>=` floor (an extra such as `lm_eval[api]` and an upper bound `,<X` may
follow); anything else is an error, so a floor cannot go missing.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("serve", "dev", "lmeval")


def floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for e in EXTRAS for r in project["optional-dependencies"][e]]
    out: dict[str, str] = {}
    for req in reqs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(?:\[[A-Za-z0-9_,\-]+\])?\s*>=\s*([0-9][0-9A-Za-z.]*)"
                         r"(?:\s*,\s*<\s*[0-9][0-9A-Za-z.]*)?\s*", req)
        if m is None:
            sys.exit(f"pyproject.toml: requirement {req!r} has no plain '>=' floor")
        name, floor = m[1].lower().replace("_", "-"), m[2]
        if name in out and out[name] != floor:
            sys.exit(f"pyproject.toml: {name} has two floors, {out[name]} and {floor}")
        out[name] = floor
    return out


def _norm(v: str) -> tuple:
    v = v.split("+")[0]
    parts = [int(p) for p in re.findall(r"\d+", v)]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def main() -> None:
    pins = floors()
    if "--check" not in sys.argv:
        print("\n".join(f"{n}=={v}" for n, v in sorted(pins.items())))
        return
    bad = []
    for name, floor in sorted(pins.items()):
        try:
            got = version(name)
        except PackageNotFoundError:
            bad.append(f"{name}: not installed (floor {floor})")
            continue
        if _norm(got) != _norm(floor):
            bad.append(f"{name}: {got} installed, floor {floor}")
    if bad:
        sys.exit("not at the declared floors:\n  " + "\n  ".join(bad))
    print(f"all {len(pins)} direct dependencies at their declared floors")


if __name__ == "__main__":
    main()

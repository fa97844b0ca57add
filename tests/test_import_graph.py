"""The packages of axial import each other in layers: no cycle between packages (function-local imports count).

A top-level module is its own package. The layering this keeps (bottom to top, roughly): errors / config /
stats / axes / cliopts / io -> data, models, generate -> mixture -> mocae -> preference -> sources -> variants ->
rewards, evaluate, export, experts, mora, serve, chat, demo -> cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import axial

ROOT = Path(axial.__file__).parent


def package_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts  # ("axial", pkg, ...)
        src = parts[1]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom) and node.level:
                names = [".".join(list(parts[:-node.level]) + ([node.module] if node.module else []))]
            else:
                continue
            for name in names:
                p = name.split(".")
                if p[0] == "axial" and len(p) > 1 and p[1] not in (src, "__init__"):
                    edges.setdefault(src, set()).add(p[1])
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_packages():
    cycle = find_cycle(package_edges())
    assert cycle is None, "import cycle between axial packages: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_ground_floor_modules_import_nothing_above_them():
    edges = package_edges()
    for module in ("errors", "io", "stats", "cliopts", "config"):
        # io (atomic file writes) sits beside errors: config saves through it.
        assert edges.get(module, set()) <= {"errors", "io"} - {module}, (module, edges.get(module))

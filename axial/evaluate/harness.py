"""`evaluate`: several variants on identical items of several benchmarks -> DIR/report.{json,md,png}."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from axial.errors import AxialError
from axial.evaluate.benches import Bench, RunContext, get_bench
from axial.evaluate.config import EvalConfig
from axial.io import atomic_write_json
from axial.stats import bootstrap_ci, deterministic_subset, paired_bootstrap_diff
from axial.variants import VariantSpec, load_variant

console = Console(stderr=True)
DEFAULT_JUDGE = "embedded"


def load_bench_items(bench: Bench, source, split: str, limit: int | None, seed: int):
    """(items, info) for one bench: records from `source` (path / HF id, or a list of records), the split,
    duplicates removed (reported, not silent), then the deterministic --limit subset."""
    if isinstance(source, str):
        try:
            from axial.data import load_records
        except ImportError as e:  # pragma: no cover - the data readers ship with axial
            raise AxialError(f"reading '{source}' needs axial.data.load_records: {e}") from e
        # Kind auto-detected from the fields; items_from_records checks the record shape.
        result = load_records(source, split=None if split == "all" else split)
        records, where = result.records, source
    else:
        records, where = list(source), "<records>"
        if split != "all":
            from axial.data.splits import record_split

            records = [r for r in records if record_split(r) == split]
    items = bench.items_from_records(records, where)
    unique: dict[str, dict] = {}
    for it in items:
        unique.setdefault(it["id"], it)
    items = list(unique.values())
    if not items:
        raise AxialError(f"bench {bench.name}: no items in '{where}' (split {split})")
    keep = deterministic_subset([it["id"] for it in items], limit, seed)
    info = {"source": where, "split": split, "records": len(records), "unique_items": len(items),
            "duplicates_removed": len(records) - len(items), "limit": limit, "n": len(keep)}
    return [items[i] for i in keep], info


class _Judges:
    """One judge per axis, loaded on first use, validated once (cached in DIR/judges/<axis>.json)."""

    def __init__(self, config: EvalConfig, out: Path):
        self.config, self.out, self.loaded = config, out, {}

    def spec(self, axis: str) -> str:
        return self.config.judges.get(axis, DEFAULT_JUDGE)

    def __call__(self, axis: str):
        if axis not in self.loaded:
            from axial.rewards import load_judge

            judge = load_judge(self.spec(axis), axis)
            # A validation file given for this axis (`axial validate-judge --out`) wins over what the judge
            # carries (a reward model's own held-out metrics): it is the one the user chose to stand behind.
            if self.config.judge_validation.get(axis) or (getattr(judge, "validation", None) is None
                                                          and self.config.validate_judges):
                judge.validation = self._validation(judge, axis)
            self.loaded[axis] = judge
        return self.loaded[axis]

    def _validation(self, judge, axis: str) -> dict[str, Any]:
        given = self.config.judge_validation.get(axis)
        if given:
            try:
                validation = json.loads(Path(given).read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise AxialError(f"EvalConfig.judge_validation[{axis}] '{given}': cannot read: {e}") from e
            if isinstance(validation.get("results"), list):
                validation = _pick_validation(validation, judge, given)
            if validation.get("axis") not in (None, axis):
                raise AxialError(f"EvalConfig.judge_validation[{axis}] '{given}': validates axis "
                                 f"'{validation.get('axis')}', not '{axis}'")
            named = (validation.get("judge") or {}).get("name")
            if named is not None and named != getattr(judge, "name", named):
                raise AxialError(f"EvalConfig.judge_validation[{axis}] '{given}': validates judge '{named}', "
                                 f"but the {axis} judge is '{judge.name}'")
            return {**validation, "file": given}
        cache = self.out / "judges" / f"{axis}.json"
        key = {"spec": self.spec(axis), "limit": self.config.judge_validation_limit}
        if cache.exists():
            saved = json.loads(cache.read_text())
            if saved.get("key") == key:
                return saved["validation"]
        console.print(f"validating the {axis} judge '{key['spec']}' (limit {key['limit']})...")
        try:
            from axial.rewards.validate import validate_judge

            validation = validate_judge(judge, axis, limit=self.config.judge_validation_limit)
        except (ImportError, AxialError) as e:
            # Reported as NOT VALIDATED beside every number of this judge, and not cached: a later run with
            # the validation data available validates it.
            console.print(f"[yellow]warning:[/] the {axis} judge is not validated: {e}")
            return {"error": f"not validated: {e}"}
        atomic_write_json(cache, {"key": key, "validation": validation}, default=str)
        return validation

    def describe(self) -> dict[str, dict[str, Any]]:
        return {axis: {"spec": self.spec(axis), **j.describe()} for axis, j in self.loaded.items()}


def _unique_names(variants: Sequence[VariantSpec]) -> None:
    names = [v.label for v in variants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AxialError(f"variants: duplicate name(s) {dupes}; give each a distinct name")


def evaluate(variants: Sequence[VariantSpec], benches: Sequence[str] | None = None,
             data: dict[str, Any] | None = None, out: str | Path = "eval", config: EvalConfig | None = None,
             *, progress: bool = True) -> dict[str, Any]:
    """Run every variant on the same items of every bench; write DIR/report.{json,md,png}; return the report.

    `data` maps a bench (or its family, e.g. "truthfulqa") to a file path / HF id, or to a list of records.
    Re-running with the same DIR resumes: finished items are read back from DIR/items, never redone.
    """
    from axial.evaluate.report import write_report

    config = config or EvalConfig()
    data = dict(data or {})
    sources = {**config.data, **{k: v for k, v in data.items() if isinstance(v, str)}}
    config = config.replace(benches=list(benches or config.benches), data=sources)
    variants = list(variants)
    if not variants:
        raise AxialError("evaluate: no variants given")
    _unique_names(variants)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    # Check every input before the first (slow) model load.
    bench_items: dict[str, tuple[list, dict]] = {}
    for name in config.benches:
        bench = get_bench(name)
        family = name.split("_")[0]
        source = data.get(name, data.get(family)) or config.source_for(name)
        if source is None:
            raise AxialError(f"bench {name}: no data; pass --data {name}=FILE_OR_HF_ID"
                             + (f" (or --data {family}=...)" if family != name else ""))
        bench_items[name] = load_bench_items(bench, source, config.split_for(name), config.limit_for(name),
                                             config.seed)
        if not isinstance(source, str):
            config.data[name] = f"<{bench_items[name][1]['records']} records passed in Python>"
    config.save(out / "eval_config.json")
    atomic_write_json(out / "variants.json", [v.to_dict() for v in variants])

    judges = _Judges(config, out)
    ctx = RunContext(config, out, judges, progress=progress)
    per_variant: dict[str, dict[str, list[dict]]] = {}
    bases: dict[tuple, tuple] = {}
    for spec in variants:
        key = (spec.model, spec.dtype, spec.device)
        if key not in bases:
            from axial.models import load_model

            bases[key] = load_model(spec.model, dtype=spec.dtype, device=spec.device)
        variant = load_variant(spec, base=bases[key])
        per_variant[spec.label] = {}
        for name in config.benches:
            items, info = bench_items[name]
            # Not the split or limit: an item's record does not depend on which subset it was drawn in.
            ctx.settings = {"variant": spec.to_dict(), "bench": name, "source": info["source"],
                            "seed": config.seed}
            console.print(f"[bold]{spec.label}[/] {name}: {info['n']} items")
            per_variant[spec.label][name] = get_bench(name).run(ctx, variant, items)

    if config.judge:
        # A resumed run may have judged nothing new; the report still names every judge behind its numbers.
        for axis in dict.fromkeys(get_bench(b).axis for b in config.benches if get_bench(b).judged):
            judges(axis)
    report = build_report(config, variants, bench_items, per_variant, judges.describe())
    write_report(report, out)
    return report


def build_report(config: EvalConfig, variants, bench_items, per_variant, judges) -> dict[str, Any]:
    names = [v.label for v in variants]
    results: dict[str, dict] = {n: {} for n in names}
    differences: dict[str, dict] = {n: {} for n in names[1:]}
    seed, resamples = config.seed, config.bootstrap_resamples
    for bench_name in config.benches:
        bench = get_bench(bench_name)
        first = None
        for name in names:
            records = per_variant[name][bench_name]
            if not records:  # generated but not judged (config.judge = False)
                results[name][bench_name] = {"status": "responses stored, not judged"}
                continue
            metrics = bench.metrics(records, config)
            results[name][bench_name] = {
                k: {**bootstrap_ci(m.rows, m.statistic, resamples=resamples, seed=seed), "judged": m.judged,
                    "by": _produced_by(bench, m)}
                for k, m in metrics.items()}
            if first is None:
                first = metrics
            else:
                differences[name][bench_name] = {
                    k: paired_bootstrap_diff(first[k].rows, m.rows, m.statistic, resamples=resamples, seed=seed)
                    for k, m in metrics.items()}
    used = {r.get("by") for benches in results.values() for ms in benches.values() for r in ms.values()
            if isinstance(r, dict)}
    return {
        "config": config.to_dict(),
        "instruments": {k: v for k, v in _instruments().items() if k in used},
        "variants": [v.to_dict() for v in variants],
        "benches": {b: {"axis": get_bench(b).axis, "headline": list(get_bench(b).headline),
                        "judged": get_bench(b).judged, **bench_items[b][1]} for b in config.benches},
        "judges": judges,
        "results": results,
        "differences_vs_first": differences,
        "statistics": f"percentile bootstrap over items, {resamples} resamples, seed {seed}; differences are "
                      "paired (same items) against the first variant",
    }


def _produced_by(bench: Bench, metric) -> str | None:
    """What produced a metric: "judge:<axis>" (see report["judges"]), an instrument key (see
    report["instruments"]) or None (read off the model or the text itself: log-likelihoods, lengths)."""
    if metric.judged:
        return f"judge:{bench.axis}"
    return metric.instrument


def _instruments() -> dict[str, dict[str, Any]]:
    from axial.evaluate import refusal

    return {
        "refusal": refusal.describe(),
        "references": {"name": "lm-eval truthfulqa_gen reference overlap", "kind": "reference metric",
                       "detail": "BLEU (sacrebleu) / ROUGE (rouge_score) of the completion to the true minus "
                                 "the false reference answers; no judge, nothing to validate but the "
                                 "references themselves"},
    }


def _pick_validation(doc: dict[str, Any], judge, given: str) -> dict[str, Any]:
    """From an `axial validate-judge` document (one result per judge x data source), the result a report quotes
    for this judge: human labels first, then the largest n; in the compact form reports print."""
    mine = [r for r in doc["results"] if (r.get("judge") or {}).get("name") == getattr(judge, "name", None)]
    if not mine:
        names = sorted({(r.get("judge") or {}).get("name") for r in doc["results"]}, key=str)
        raise AxialError(f"judge validation '{given}': no result for judge '{judge.name}' (it validates {names})")
    best = max(mine, key=lambda r: ("human" in str((r.get("dataset") or {}).get("labels", "")), r.get("n") or 0))
    subsets = best.get("subsets") or {}
    out = {k: best.get(k) for k in ("metric", "value", "ci95", "n", "data", "axis", "judge")}
    out["labels"] = (best.get("dataset") or {}).get("labels")
    if "all" in subsets:
        out["length_baseline"] = subsets["all"].get("length")
        out["judge_minus_length"] = subsets["all"].get("judge_minus_length")
    if "length_balanced" in subsets:
        lb = subsets["length_balanced"]
        out["length_balanced"] = {"n": lb.get("n"), "judge": lb.get("judge"), "length": lb.get("length")}
    return out

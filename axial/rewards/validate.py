"""How far to trust a judge: agreement with human (or GPT-4) labels on data it never saw, beside what response
length alone achieves on the same pairs, with 95% CIs. `axial validate-judge` is the one place that says what
each judge is worth; `axial eval` reports carry its numbers.

Data: any source of preference pairs or QA records (`axial.rewards.pairs`). By default split=test, so a reward
model trained on split=train is never validated on its training prompts; split=all is for data no judge was
trained on (PandaLM), and is refused for a reward model whose recorded training prompts overlap the data.
  helpful:  PandaLM human majority labels; AlpacaEval GPT-4 annotations (test-split instructions);
  harmless: HH-RLHF chosen-vs-rejected pairs;
  honest:   TruthfulQA, every correct x incorrect answer pair of a question.

Length is an explicit confound: GPT-4 and people both prefer longer answers, so "the longer response wins"
(`length`, by characters) is computed on exactly the judge's pairs and every agreement is shown beside it, with
the paired difference judge - length and its CI, on these subsets of the non-tie pairs:
  all              every pair (a judge's tie, or equal lengths for the baseline, counts half);
  unequal_length   pairs whose responses differ in length;
  length_balanced  unequal-length pairs whose lengths differ by < 20% of the longer (length says little here);
  shorter_wins     pairs where the label prefers the SHORTER response (length gets 0% by construction; a
                   judge that is only a length meter also gets ~0%).
CIs: percentile bootstrap (2000 resamples) over prompts, because pairs that share a prompt are correlated;
judge, length and the difference use the same resamples, so the difference's CI is a paired one.

Output schema ("axial.validate-judge/2"), one JSON document per run (`write_validation` also writes the same
numbers as Markdown and a PNG beside it):

    {"schema": "axial.validate-judge/2", "axis": str, "created": ISO time, "command": str | null,
     "results": [RESULT, ...]}          # one per (judge, data source)

    RESULT = {
      "schema", "axis", "metric": "pair_agreement",
      "value", "ci95": [lo, hi], "n", "n_groups",        # headline: judge agreement on subset "all"
      "data": "SOURCE (split=SPLIT)",                    # one line, as reports print it
      "dataset": {"source", "split", "labels",           # labels: e.g. "human majority of 3 (PandaLM)"
                  "n_records", "n_other_split", "n_pairs", "n_prompts",
                  "excluded": {reason: count}},          # ties, no valid label, duplicate records, ...
      "judge": {"name", "kind", "spec", "axis", "path", "weak", ...},  # Judge.describe() without validation
      "weak": bool, "method": str, "limit", "seed", "max_pairs_per_prompt",
      "length_unit": "characters", "balanced_threshold": 0.2,
      "subsets": {NAME: {"n", "n_groups",
                         "judge": {"value", "ci95"}, "length": {"value", "ci95"},
                         "judge_minus_length": {"value", "ci95"}}},   # NAME as listed above
      "baselines": {"longer_wins": {"value", "ci95", "n", "n_groups"}},   # = subsets.all.length
    }

`headline(doc, judge_name)` picks the result a report should quote for a judge (human labels first), and
`Judge.validation` is set to that compact form by `validate_judge`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axial.errors import AxialError
from axial.io import atomic_output, atomic_write_json, atomic_write_text
from axial.rewards.base import Judge
from axial.rewards.pairs import Pair, PairSet, default_source, load_pairs
from axial.rewards.stats import mean_ci

SCHEMA = "axial.validate-judge/2"
BALANCED = 0.2
SUBSETS = ("all", "unequal_length", "length_balanced", "shorter_wins")
SUBSET_HELP = {
    "all": "all non-tie pairs",
    "unequal_length": "responses of unequal length",
    "length_balanced": f"lengths within {int(BALANCED * 100)}% of each other",
    "shorter_wins": "label prefers the shorter response",
}


def _wins(margins: Sequence[float]) -> list[float]:
    return [1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in margins]


def length_margin(pair: Pair) -> int:
    """len(chosen) - len(rejected) in characters: > 0 when "the longer response wins" agrees with the label."""
    return len(pair.chosen.response) - len(pair.rejected.response)


def in_subset(pair: Pair, subset: str) -> bool:
    a, b = len(pair.chosen.response), len(pair.rejected.response)
    if subset == "all":
        return True
    if subset == "unequal_length":
        return a != b
    if subset == "length_balanced":
        return a != b and abs(a - b) < BALANCED * max(a, b)
    if subset == "shorter_wins":
        return a < b
    raise AxialError(f"unknown subset '{subset}'; known: {', '.join(SUBSETS)}")


def agreement_table(margins: Sequence[float], pairs: Sequence[Pair], *, seed: int = 0) -> dict[str, Any]:
    """{subset: {"n", "n_groups", "judge", "length", "judge_minus_length"}} for a judge's margins on `pairs`
    (margin > 0: the judge agrees with the label). Judge, length and the paired difference share resamples."""
    if len(margins) != len(pairs):
        raise AxialError(f"agreement_table: {len(margins)} margins for {len(pairs)} pairs")
    judge_w = _wins(margins)
    length_w = _wins([length_margin(p) for p in pairs])
    table = {}
    for subset in SUBSETS:
        idx = [i for i, p in enumerate(pairs) if in_subset(p, subset)]
        groups = [pairs[i].group for i in idx]
        j = mean_ci([judge_w[i] for i in idx], groups=groups, seed=seed)
        length = mean_ci([length_w[i] for i in idx], groups=groups, seed=seed)
        diff = mean_ci([judge_w[i] - length_w[i] for i in idx], groups=groups, seed=seed)
        table[subset] = {"n": len(idx), "n_groups": j["n_groups"],
                         "judge": {"value": j["value"], "ci95": j["ci95"]},
                         "length": {"value": length["value"], "ci95": length["ci95"]},
                         "judge_minus_length": {"value": diff["value"], "ci95": diff["ci95"]}}
    return table


def _labels(pairs: Sequence[Pair]) -> str:
    meta = pairs[0].meta if pairs else {}
    if "annotators" in meta:
        return f"human majority of {len(meta['annotators'])} (PandaLM)"
    if "annotator" in meta:
        return f"annotator {meta['annotator']}"
    return "the dataset's labels"


def _check_unseen(judge: Judge, pair_set: PairSet) -> None:
    """Refuse to validate a judge on prompts it was trained on: by its recorded training prompts when it has
    them, else by its recorded training source (then only split=test is allowed)."""
    seen = getattr(judge, "train_prompt_hashes", None)
    if seen:
        from axial.rewards.bradley_terry import prompt_hash

        overlap = {p.group for p in pair_set.pairs if prompt_hash(p.group) in seen}
        if overlap:
            raise AxialError(f"validate_judge: {len(overlap)} prompt(s) of '{pair_set.source}' "
                             f"(split={pair_set.split}) were in judge '{judge.name}''s training data, e.g. "
                             f"{sorted(overlap)[0][:80]!r}; validate on data it never saw (split=test)")
    trained_on = getattr(getattr(judge, "config", None), "data", None)
    if trained_on and pair_set.split != "test" and _same_file(trained_on, pair_set.source):
        raise AxialError(f"validate_judge: judge '{judge.name}' was trained on '{trained_on}'; validate it there "
                         f"on split=test only, not split={pair_set.split}")


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def validate_judge(judge: Judge, axis: str, source: str | None = None, limit: int | None = None,
                   seed: int = 0, *, split: str = "test", max_pairs_per_prompt: int | None = None,
                   cache_dir: Path | None = None) -> dict[str, Any]:
    """One RESULT (see the module docstring) for `judge` on `source`'s `split`.

    limit: a deterministic subset of this many prompts (hash order, so not biased by file order).
    max_pairs_per_prompt: a deterministic subset of pairs per prompt (AlpacaEval's GPT-4 file has 53).
    The headline is also stored on `judge.validation`, so reports that describe() the judge carry it.
    """
    if judge.axis is not None and judge.axis != axis:
        raise AxialError(f"validate_judge: judge '{judge.name}' judges axis '{judge.axis}', not '{axis}'")
    if split not in ("test", "all"):
        raise AxialError(f"validate_judge: split must be 'test' or 'all' (data never trained on), got '{split}'")
    source = source or default_source(axis)
    pair_set = load_pairs(axis, source, split=split, limit=limit, seed=seed,
                          max_pairs_per_prompt=max_pairs_per_prompt)
    _check_unseen(judge, pair_set)
    pairs = pair_set.pairs
    pairwise = getattr(judge, "compare_template", None) is not None
    if pairwise:
        # The judge has a real pairwise prompt (asked in both orders): validate what reports will use.
        probs = judge.compare([p.chosen.message_list() for p in pairs], [p.chosen.response for p in pairs],
                              [p.rejected.response for p in pairs])
        margins = [p - 0.5 for p in probs]
    else:
        margins = _score_margins(judge, pairs, cache_dir=cache_dir)
    table = agreement_table(margins, pairs, seed=seed)
    overall = table["all"]
    result = {
        "schema": SCHEMA, "axis": axis, "metric": "pair_agreement",
        "value": overall["judge"]["value"], "ci95": overall["judge"]["ci95"],
        "n": overall["n"], "n_groups": overall["n_groups"],
        "data": f"{source} (split={split})",
        "dataset": {**pair_set.describe(), "labels": _labels(pairs)},
        "judge": {"spec": getattr(judge, "spec", None),
                  **{k: v for k, v in judge.describe().items() if k != "validation"}},
        "weak": judge.weak,
        "method": "compare() in both orders" if pairwise else "score(chosen) > score(rejected)",
        "limit": limit, "seed": seed, "max_pairs_per_prompt": max_pairs_per_prompt,
        "length_unit": "characters", "balanced_threshold": BALANCED,
        "subsets": table,
        "baselines": {"longer_wins": {**overall["length"], "n": overall["n"], "n_groups": overall["n_groups"]}},
    }
    judge.validation = compact(result)
    return result


def compact(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a report prints beside a judge's scores (what `Judge.validation` holds)."""
    subsets = result["subsets"]
    return {"metric": result["metric"], "value": result["value"], "ci95": result["ci95"], "n": result["n"],
            "data": result["data"], "labels": result["dataset"]["labels"],
            "length_baseline": subsets["all"]["length"]["value"],
            "judge_minus_length": subsets["all"]["judge_minus_length"],
            "length_balanced": {"n": subsets["length_balanced"]["n"],
                                "judge": subsets["length_balanced"]["judge"]["value"],
                                "length": subsets["length_balanced"]["length"]["value"]}}


def _score_margins(judge: Judge, pairs: Sequence[Pair], *, cache_dir: Path | None = None) -> list[float]:
    """score(chosen) - score(rejected), scoring each distinct (prompt, response) once (pairs share them).

    A reward model's raw rewards are used when it has them: a calibrated probability can saturate to exactly
    0 or 1 in floating point and turn clear wins into ties."""
    items = list(dict.fromkeys([p.chosen for p in pairs] + [p.rejected for p in pairs]))
    prompts, responses = [it.message_list() for it in items], [it.response for it in items]
    if hasattr(judge, "rewards"):
        if cache_dir is None:
            from axial.models import axial_home

            # The cache `axial train-reward` fills: validation re-reads the features instead of re-encoding.
            cache_dir = axial_home() / "reward_features"
        values = judge.rewards(prompts, responses, cache_dir=cache_dir)
    else:
        values = judge.score(prompts, responses)
    scores = dict(zip(items, values, strict=True))
    return [scores[p.chosen] - scores[p.rejected] for p in pairs]


def format_validation(result: dict[str, Any]) -> str:
    lines = [f"{result['axis']} judge {result['judge']['name']}"
             + (" (weak judge)" if result.get("weak") and "weak" not in result["judge"]["name"] else "")
             + f" on {result['data']}, labels: {result['dataset']['labels']}"]
    for subset, row in result["subsets"].items():
        if not row["n"]:
            continue
        lines.append(f"  {subset:16s} n={row['n']:5d} ({row['n_groups']} prompts)  judge {_fmt(row['judge'])}  "
                     f"length {_fmt(row['length'])}  judge-length {_fmt(row['judge_minus_length'], signed=True)}")
    excluded = result["dataset"]["excluded"]
    if excluded:
        lines.append("  left out: " + ", ".join(f"{n} {why}" for why, n in excluded.items()))
    return "\n".join(lines)


def _fmt(m: dict[str, Any], *, signed: bool = False) -> str:
    if m["value"] is None:
        return "n/a"
    lo, hi = m["ci95"]
    sign = "+" if signed else ""
    return f"{m['value']:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]"


# ---- many judges x many data sources: the document `axial validate-judge` writes -----------------------------

def validate_judges(judges: Sequence[Judge], axis: str, sources: Sequence[tuple[str, str]], *,
                    limit: int | None = None, max_pairs_per_prompt: int | None | Sequence[int | None] = None,
                    seed: int = 0, command: str | None = None, cache_dir: Path | None = None,
                    progress=None) -> dict[str, Any]:
    """The schema-2 document for every judge on every (source, split).

    max_pairs_per_prompt: one value for every source, or one per source (None = every pair), e.g. all of
    PandaLM beside one pair per instruction of AlpacaEval's GPT-4 file in one document."""
    if isinstance(max_pairs_per_prompt, int | None):
        caps = [max_pairs_per_prompt] * len(sources)
    else:
        caps = list(max_pairs_per_prompt)
        if len(caps) != len(sources):
            raise AxialError(f"validate_judges: {len(caps)} max_pairs_per_prompt values for {len(sources)} "
                             "sources; give one for all or one per source")
    results = []
    for judge in judges:
        for (source, split), cap in zip(sources, caps, strict=True):
            if progress:
                progress(f"validating {judge.name} on {source} (split={split})")
            results.append(validate_judge(judge, axis, source, limit, seed, split=split,
                                          max_pairs_per_prompt=cap, cache_dir=cache_dir))
    return {"schema": SCHEMA, "axis": axis, "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "command": command, "results": results}


def headline(doc: dict[str, Any], judge_name: str) -> dict[str, Any] | None:
    """The compact validation a report should quote for `judge_name`: human labels first, then the largest n."""
    mine = [r for r in doc.get("results", []) if r["judge"]["name"] == judge_name]
    if not mine:
        return None
    best = max(mine, key=lambda r: ("human" in r["dataset"]["labels"], r["n"]))
    return compact(best)


def render_markdown(doc: dict[str, Any]) -> str:
    lines = [f"# Judge validation ({doc['axis']})", "",
             "Agreement with the labels on pairs no judge was trained on, beside \"the longer response wins\" on the "
             "same pairs; value [95% CI], CIs bootstrapped over prompts; judge - length is a paired difference.", ""]
    by_data: dict[str, list[dict]] = {}
    for r in doc["results"]:
        by_data.setdefault(r["data"], []).append(r)
    for data, results in by_data.items():
        ds = results[0]["dataset"]
        excluded = ", ".join(f"{n} {why}" for why, n in ds["excluded"].items()) or "none"
        lines += [f"## {data}", "", f"Labels: {ds['labels']}. {ds['n_pairs']} pairs over {ds['n_prompts']} prompts "
                  f"from {ds['n_records']} records; left out: {excluded}.", "",
                  "| judge | pairs | n (prompts) | judge agreement | length only | judge - length |",
                  "|---|---|---|---|---|---|"]
        for r in results:
            name = r["judge"].get("spec") or r["judge"]["name"]
            weak = " (weak)" if r.get("weak") else ""
            for subset, row in r["subsets"].items():
                if not row["n"]:
                    continue
                lines.append(f"| `{name}`{weak} | {SUBSET_HELP[subset]} | {row['n']} ({row['n_groups']}) | "
                             f"{_fmt(row['judge'])} | {_fmt(row['length'])} | "
                             f"{_fmt(row['judge_minus_length'], signed=True)} |")
        lines.append("")
    return "\n".join(lines)


def plot_validation(doc: dict[str, Any], path: Path) -> None:
    """One panel per data source: judge vs length-only agreement per subset, with 95% CI whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    by_data: dict[str, list[dict]] = {}
    for r in doc["results"]:
        by_data.setdefault(r["data"], []).append(r)
    fig, axes = plt.subplots(1, len(by_data), figsize=(5.5 * len(by_data), 4.2), squeeze=False)
    for ax, (data, results) in zip(axes[0], by_data.items(), strict=True):
        subsets = [s for s in SUBSETS if results[0]["subsets"][s]["n"]]
        bars = [("length only", results[0], "length")] + [(r["judge"]["name"], r, "judge") for r in results]
        width = 0.8 / len(bars)
        x = np.arange(len(subsets))
        for k, (label, r, key) in enumerate(bars):
            vals = [r["subsets"][s][key]["value"] for s in subsets]
            lo = [v - r["subsets"][s][key]["ci95"][0] for s, v in zip(subsets, vals, strict=True)]
            hi = [r["subsets"][s][key]["ci95"][1] - v for s, v in zip(subsets, vals, strict=True)]
            ax.bar(x + (k - (len(bars) - 1) / 2) * width, vals, width, yerr=[lo, hi], capsize=2,
                   label=label, color="lightgrey" if key == "length" else None, edgecolor="grey")
        ax.axhline(0.5, color="black", lw=0.6, ls="--")
        ax.set_xticks(x, [f"{s}\nn={results[0]['subsets'][s]['n']}" for s in subsets], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("agreement with labels")
        ax.set_title(f"{Path(data.split(' (')[0]).name} ({results[0]['dataset']['labels']})", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def write_validation(doc: dict[str, Any], out: str | Path) -> list[Path]:
    """Write the document as OUT (.json), and the same numbers as OUT.md and OUT.png beside it."""
    out = Path(out)
    if out.suffix != ".json":
        raise AxialError(f"validate-judge --out: give a .json path (the .md and .png go beside it), got '{out}'")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, doc)
    md, png = out.with_suffix(".md"), out.with_suffix(".png")
    atomic_write_text(md, render_markdown(doc))
    plot_validation(doc, png)
    return [out, md, png]

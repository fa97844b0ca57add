"""How far to trust a judge: agreement with human (or GPT-4) labels on held-out data, with a 95% CI.

Always on split=test, so a reward model trained on split=train is never validated on its training prompts.
  harmless: HH-RLHF chosen-vs-rejected pair accuracy;
  honest:   TruthfulQA correct-vs-incorrect answer pair accuracy (every correct x incorrect pair of a question);
  helpful:  agreement with the GPT-4-turbo preferences of the AlpacaEval annotations (ties left out).
Any other axis works with any source of preference pairs or QA records. CIs are bootstrapped over prompts,
because pairs of one prompt are correlated. A "longer response wins" baseline is reported beside every
number: on AlpacaEval the GPT-4-turbo side is both longer and preferred ~98% of the time, so agreement there
says little unless it beats that baseline.
"""

from __future__ import annotations

from typing import Any

from axial.errors import AxialError
from axial.rewards.base import Judge
from axial.rewards.pairs import Pair, default_source, preference_pairs
from axial.rewards.stats import mean_ci


def _wins(margins: list[float]) -> list[float]:
    return [1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in margins]


def validate_judge(judge: Judge, axis: str, source: str | None = None, limit: int | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """{"metric", "value", "ci95", "n", "data", ...} for `judge` on the held-out split of `source`.

    limit: a deterministic subset of this many prompts (hash order, so not biased by file order).
    The result is also stored on `judge.validation`, so reports that describe() the judge carry it.
    """
    if judge.axis is not None and judge.axis != axis:
        raise AxialError(f"validate_judge: judge '{judge.name}' judges axis '{judge.axis}', not '{axis}'")
    source = source or default_source(axis)
    pairs = preference_pairs(axis, source, split="test", limit=limit, seed=seed)
    groups = [p.group for p in pairs]
    pairwise = getattr(judge, "compare_template", None) is not None
    if pairwise:
        # The judge has a real pairwise prompt (asked in both orders): validate what reports will use.
        probs = judge.compare([p.chosen.message_list() for p in pairs], [p.chosen.response for p in pairs],
                              [p.rejected.response for p in pairs])
        margins = [p - 0.5 for p in probs]
    else:
        margins = _score_margins(judge, pairs)
    result = {"metric": "pair_accuracy", **mean_ci(_wins(margins), groups=groups, seed=seed),
              "data": f"{source} (split=test)", "axis": axis, "limit": limit,
              "method": "compare() in both orders" if pairwise else "score(chosen) > score(rejected)",
              "judge": {k: v for k, v in judge.describe().items() if k != "validation"},
              "weak": judge.weak,
              "baselines": {"longer_wins": mean_ci(_wins([len(p.chosen.response) - len(p.rejected.response)
                                                          for p in pairs]), groups=groups, seed=seed)}}
    judge.validation = {k: result[k] for k in ("metric", "value", "ci95", "n", "data")}
    return result


def _score_margins(judge: Judge, pairs: list[Pair]) -> list[float]:
    """score(chosen) - score(rejected), scoring each distinct (prompt, response) once (QA pairs share them)."""
    items = list(dict.fromkeys([p.chosen for p in pairs] + [p.rejected for p in pairs]))
    scores = dict(zip(items, judge.score([it.message_list() for it in items], [it.response for it in items]),
                      strict=True))
    return [scores[p.chosen] - scores[p.rejected] for p in pairs]


def format_validation(result: dict[str, Any]) -> str:
    lo, hi = result["ci95"]
    base = result["baselines"]["longer_wins"]["value"]
    weak = " (weak judge)" if result.get("weak") and "weak" not in result["judge"]["name"] else ""
    return (f"{result['axis']} judge {result['judge']['name']}{weak}: {result['metric']} {result['value']:.3f} "
            f"[95% CI {lo:.3f}, {hi:.3f}] (n={result['n']} pairs, {result['n_groups']} prompts) on "
            f"{result['data']}; longer-response baseline {base:.3f}")

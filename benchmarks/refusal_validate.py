"""Validate the refusal detector on the committed hand labels; write the result where reports read it.

    python benchmarks/refusal_validate.py   # -> benchmarks/results/judges/refusal/validation.{json,md}
                                            #    and axial/evaluate/refusal_validation.json (shipped)
"""

from __future__ import annotations

import json
from pathlib import Path

from axial.evaluate.refusal import read_labels, validate_refusal_detector

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "benchmarks/results/judges/refusal/labels.jsonl"


def _f(m):
    return f"{100 * m['value']:.1f} [{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}]"


def main():
    rows = read_labels(LABELS)
    result = validate_refusal_detector(rows)
    result["labels"] = ("benchmarks/results/judges/refusal/labels.jsonl: model responses hand-labelled by the "
                        "helper agent (an LLM) following README.md's guideline; test half labelled after the "
                        "detector was frozen")
    out = ROOT / "benchmarks/results/judges/refusal"
    (out / "validation.json").write_text(json.dumps(result, indent=2) + "\n")
    (ROOT / "axial/evaluate/refusal_validation.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| test subset | n | refusals | detector accuracy | length-only accuracy (len < "
             f"{result['length_threshold_chars']} chars) | detector - length (paired) | detector recall | "
             "detector precision | majority-class accuracy |", "|---|---|---|---|---|---|---|---|---|"]
    blocks = {"all": result["test"], **result.get("test_by_group", {})}
    for name, b in blocks.items():
        rec = _f(b["detector_recall"]) if "detector_recall" in b else "-"
        prec = _f(b["detector_precision"]) if "detector_precision" in b else "-"
        lines.append(f"| {name} | {b['n']} | {100 * b['refusal_share']:.1f}% | {_f(b['detector_accuracy'])} | "
                     f"{_f(b['length_baseline_accuracy'])} | {_f(b['detector_minus_length'])} | {rec} | {prec} | "
                     f"{100 * b['majority_baseline_accuracy']:.1f} |")
    (out / "validation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

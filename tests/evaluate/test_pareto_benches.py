"""The per-axis Pareto scorer (each axis its own held-out prompts, bench and judge) over a HoE router-expert set."""

import json

import pytest

import axial.rewards
from axial.data.records import PreferenceRecord, QARecord, SFTRecord
from axial.evaluate import EvalConfig
from axial.evaluate.benches import get_bench
from axial.evaluate.harness import load_bench_items
from axial.evaluate.pareto import AxisBench, ParetoConfig, bench_scorer, pareto
from axial.hoe import HoEConfig, train_hoe
from axial.mixture.testing import write_random_adapter
from axial.testing import tiny_llama
from axial.variants import VariantSpec, load_variant

AXES = ["helpful", "harmless", "honest"]


class LengthJudge:
    def __init__(self, axis):
        self.name, self.kind, self.axis, self.weak = f"len-{axis}", "fake", axis, True
        self.validation = {"metric": "pair_accuracy", "value": 0.6, "ci95": [0.5, 0.7], "n": 10, "data": "x"}
        self.calls = 0

    def score(self, prompts, responses):
        self.calls += 1
        return [min(1.0, len(r) / 40) for r in responses]

    def compare(self, prompts, a, b):
        return [0.5 + (len(x) - len(y)) / 200 for x, y in zip(a, b, strict=True)]

    def describe(self):
        return {"name": self.name, "kind": self.kind, "axis": self.axis, "path": None, "weak": True,
                "validation": self.validation}


def test_bench_scorer_sweeps_a_hoe_set_per_axis_and_resumes(tmp_path, tiny_model_dir, monkeypatch):
    experts = [str(write_random_adapter(lambda: tiny_llama()[0], tmp_path / a, seed=i, axis=a, r=4, lora_alpha=64,
                                        target_modules=["q_proj", "v_proj"])) for i, a in enumerate(AXES)]
    files = []
    for axis in AXES:
        path = tmp_path / f"{axis}.jsonl"
        path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{axis} {i}"}],
                                            "chosen": f"yes {i}", "rejected": f"no {i} !"}) + "\n"
                                for i in range(40)))
        files.append(f"{axis}={path}")
    hoe = train_hoe(HoEConfig(experts=experts, data=files, out=str(tmp_path / "hoe"), model=str(tiny_model_dir),
                              steps=1, pair_batch_size=3, per_axis_limit=None, validation_per_axis=0,
                              ideal_per_axis=2, max_length=32, max_response_tokens=8, dtype="fp32"))
    judges = {}
    monkeypatch.setattr(axial.rewards, "load_judge", lambda spec, axis=None: judges.setdefault(axis, LengthJudge(axis)))
    data = {"harmless": [PreferenceRecord([{"role": "user", "content": f"bad {i}"}], "no", "ok", id=str(i))
                         for i in range(8)],
            "alpaca": [SFTRecord([{"role": "user", "content": f"do {i}"}], "ref " * i, id=str(i)) for i in range(8)],
            "truthfulqa_gen": [QARecord(f"Is {i} odd?", "maybe", ["yes"], ["no"], id=str(i)) for i in range(8)]}
    axes = {}
    for axis, (bench, metric) in {"helpful": ("alpaca", "preference"), "harmless": ("harmless", "p_safe"),
                                  "honest": ("truthfulqa_gen", "bleu_acc")}.items():
        items, _ = load_bench_items(get_bench(bench), data[bench], "all", 5, 0)
        axes[axis] = AxisBench(bench, items, metric, max_new_tokens=3)
    variant = load_variant(VariantSpec(model=str(tiny_model_dir), experts=experts, dtype="fp32", device="cpu"))
    cfg = EvalConfig(benches=["harmless"], validate_judges=False)
    out = tmp_path / "sweep"
    report = pareto(variant.mixture, AXES, bench_scorer(variant, axes, cfg, out, progress=False),
                    ParetoConfig(points_per_edge=3, bootstrap_resamples=100), hoe_set=str(hoe), out=out)
    hoe_points = {p["label"]: report["sources"][p["label"]] for p in report["points"] if p["kind"] == "hoe"}
    assert len(hoe_points) == 6 and all(s.startswith("hoe:") and s.endswith(f"set={hoe}")
                                        for s in hoe_points.values())
    assert report["n_items"] == 5 and report["hoe_dominates_linear"]["n"] == 6
    assert (out / "pareto.png").stat().st_size > 1000
    lines = {a: len((out / f"generations_{a}.jsonl").read_text().splitlines()) for a in AXES}
    calls = {a: j.calls for a, j in judges.items()}
    # a rerun re-scores nothing: generations and judged scores come back from their caches
    (out / "points.jsonl").unlink()
    again = pareto(variant.mixture, AXES, bench_scorer(variant, axes, cfg, out, progress=False),
                   ParetoConfig(points_per_edge=3, bootstrap_resamples=100), hoe_set=str(hoe), out=out)
    assert again["hypervolume"] == report["hypervolume"]
    assert {a: len((out / f"generations_{a}.jsonl").read_text().splitlines()) for a in AXES} == lines
    assert {a: j.calls for a, j in judges.items()} == calls
    with pytest.raises(Exception, match="same number of items"):
        bench_scorer(variant, {**axes, "honest": AxisBench("truthfulqa_gen", axes["honest"].items[:2], "bleu_acc")},
                     cfg, out)

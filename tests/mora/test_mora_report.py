import json

import numpy as np
import pytest

from axial.mora.report import report


def _generator_for(answers):
    """variant -> generate(prompts, cfg) returning fixed answers; the base model gets the weakest ones."""

    def generate_for(variant, adapter):
        def generate(prompts, cfg):
            assert cfg.do_sample is False
            return [answers[variant]] * len(prompts)

        return generate

    return generate_for


def test_report_pairs_variants_on_the_same_heldout_prompts(cfg, judges, fakes, tmp_path):
    heldout = fakes.make_prompts([("helpful", f"q{i}") for i in range(5)] + [("honest", f"t{i}") for i in range(3)])
    answers = {"base": "nothing", "original": "helpful", "rewritten": "helpful harmless"}
    adapters = {"original": tmp_path / "a_orig", "rewritten": tmp_path / "a_rw"}
    result = report(cfg, heldout, adapters, tmp_path / "report", generate_for=_generator_for(answers),
                    judges=judges)
    v = result["variants"]
    assert v["base"]["helpful"]["n"] == 8
    assert v["rewritten"]["harmless"]["value"] > v["original"]["harmless"]["value"]
    diff = result["paired_differences"]["rewritten - original"]
    assert diff["harmless"]["value"] == pytest.approx(0.9 + 8e-4 * (len("helpful harmless") - len("helpful")) / 8,
                                                      abs=1e-3)
    assert diff["helpful"]["value"] == pytest.approx(len(" harmless") * 1e-4)
    assert diff["harmless"]["ci95"][0] > 0
    assert result["by_source_axis"]["honest"]["rewritten - original"]["harmless"]["n"] == 3
    assert np.isfinite(result["variants"]["rewritten"]["combined"]["value"])
    for name in ("mora_report.json", "mora_report.md", "mora_report.png", "generations_base.jsonl"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    md = (tmp_path / "report" / "mora_report.md").read_text()
    assert "rewritten - original" in md and "n = 8" in md and "WEAK JUDGE" not in md
    assert json.loads((tmp_path / "report" / "mora_report.json").read_text())["n_heldout"] == 8


def test_report_reuses_complete_generations_and_labels_weak_judges(cfg, judges, fakes, tmp_path):
    heldout = fakes.make_prompts([("helpful", "q")])
    answers = {"base": "a", "original": "helpful", "rewritten": "helpful"}
    report(cfg, heldout, {}, tmp_path / "rep", generate_for=_generator_for(answers), judges=judges)

    def must_not_generate(variant, adapter):
        raise AssertionError("complete generations must be reused")

    judges["honest"].weak = True
    result = report(cfg, heldout, {}, tmp_path / "rep", generate_for=must_not_generate, judges=judges)
    assert result["weak_judge"] is True
    assert "WEAK JUDGE" in (tmp_path / "rep" / "mora_report.md").read_text()

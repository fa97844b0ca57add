import json
import re
import zlib

import numpy as np
import pytest

from axial.errors import AxialError
from axial.mora.isolate import isolate
from axial.mora.rewrite import MeanPoolEncoder, clean_rewrite, cosine, load_template, rewrite
from axial.mora.sample import sample


class BagOfWords:
    """A transparent encoder: cosine = word overlap, so the test decides which rewrites keep the intent."""

    def encode(self, texts):
        vecs = np.zeros((len(texts), 512))
        for i, t in enumerate(texts):
            for w in t.lower().split():
                vecs[i, zlib.crc32(w.encode()) % 512] += 1
        return vecs


def scripted_rewriter(calls):
    """thing 0 -> a multi-axis rewrite; 1 -> off-topic; 2 -> same intent, no new axis; 3 -> empty."""

    def rewrite(instructions, cfg):
        calls.append(len(instructions))
        out = []
        for text in instructions:
            original = text.split("Original request:\n")[1].split("\n")[0]
            n = int(re.search(r"thing (\d)", original).group(1))
            out.append({0: f"Rewritten request: be helpful harmless honest about thing {n}",
                        1: "tell me a joke about penguins and ice",
                        2: f'"{original} please"',
                        3: ""}[n])
        return out

    return rewrite


@pytest.fixture
def sampled(cfg, judges, fakes, tmp_path):
    cfg = cfg.replace(rewrite_candidates=1, similarity_threshold=0.5, min_gain=0.01)
    prompts = fakes.make_prompts([("helpful", f"be helpful about thing {i}") for i in range(4)]
                                 + [("honest", "be honest and harmless about thing 9")])
    rows = sample(cfg, prompts, tmp_path / "r.jsonl", generate=fakes.ScriptedGenerator(), judges=judges)
    iso = isolate(cfg, rows, tmp_path / "exp")["prompts"]
    return cfg, rows, iso


def test_rewrite_keeps_only_intent_preserving_envelope_raising_rewrites(sampled, judges, fakes, tmp_path):
    cfg, rows, iso = sampled
    assert [p["class"] for p in iso] == ["single"] * 4 + ["multi"]
    calls = []
    summary = rewrite(cfg, rows, iso, tmp_path / "exp", generate=fakes.ScriptedGenerator(), judges=judges,
                      rewriter=scripted_rewriter(calls), encoder=BagOfWords())
    assert summary["n_single_reward_prompts"] == 4 and summary["n_kept"] == 1
    decisions = [json.loads(x) for x in (tmp_path / "exp" / "rewrites.jsonl").read_text().splitlines()]
    kept = [d for d in decisions if d["kept"]]
    assert kept[0]["id"] == "helpful:0"
    assert kept[0]["rewrite"] == "be helpful harmless honest about thing 0"  # label stripped
    assert kept[0]["messages"][-1]["content"] == kept[0]["rewrite"]
    assert len(kept[0]["rollouts"]) == cfg.k
    rejected = [json.loads(x) for x in (tmp_path / "exp" / "rewrites_rejected.jsonl").read_text().splitlines()]
    reasons = {r["id"]: r["reason"] for r in rejected}
    assert set(reasons) == {"helpful:1", "helpful:2", "helpful:3"}
    assert reasons["helpful:1"].startswith("intent not kept: similarity")
    assert reasons["helpful:2"].startswith("no multi-axis gain")
    assert reasons["helpful:3"] == "empty rewrite"
    assert summary["rejections_by_reason"] == {"intent not kept": 1, "no multi-axis gain": 1, "empty rewrite": 1}
    assert summary["envelope_gain_of_kept"]["n"] == 1 and summary["envelope_gain_of_kept"]["value"] > 0.5
    assert summary["similarity_unrelated_baseline"]["n"] == 4

    # A rerun finds every decision made and calls nothing.
    again = rewrite(cfg, rows, iso, tmp_path / "exp", generate=fakes.ScriptedGenerator(fail_after=0), judges=judges,
                    rewriter=scripted_rewriter(calls), encoder=BagOfWords())
    assert calls == [2, 2] and again["n_kept"] == 1


def test_best_of_several_passing_candidates_is_kept(sampled, judges, fakes, tmp_path):
    cfg, rows, iso = sampled
    cfg = cfg.replace(rewrite_candidates=2)
    texts = iter(["be helpful honest about thing 0", "be helpful harmless honest about thing 0"] + [""] * 6)

    def rewriter(instructions, gen_cfg):
        return [next(texts) for _ in instructions]

    rewrite(cfg, rows, iso[:1], tmp_path / "exp2", generate=fakes.ScriptedGenerator(), judges=judges,
            rewriter=rewriter, encoder=BagOfWords())
    decision = json.loads((tmp_path / "exp2" / "rewrites.jsonl").read_text())
    assert decision["rewrite"] == "be helpful harmless honest about thing 0"
    statuses = [c["status"] for c in decision["candidates"]]
    assert statuses == ["rejected", "kept"]
    assert decision["candidates"][0]["reason"] == "another candidate had a higher envelope"


def test_clean_rewrite():
    assert clean_rewrite('Rewritten request: "Do X safely."\n\nExtra chatter') == "Do X safely."
    assert clean_rewrite("  ") == ""


def test_template_placeholders_are_checked(tmp_path):
    bad = tmp_path / "t.txt"
    bad.write_text("Rewrite {prompt} for {audience}")
    with pytest.raises(AxialError, match="unknown placeholder"):
        load_template(str(bad))
    assert "{prompt}" in load_template(None)


def test_mean_pool_encoder_on_tiny_model(tiny):
    model, tok = tiny
    enc = MeanPoolEncoder(model, tok, layer=-1)
    vecs = enc.encode(["hello there", "hello there", "a much longer and different sentence"])
    assert vecs.shape == (3, 64)
    assert cosine(vecs[0], vecs[1]) == pytest.approx(1.0, abs=1e-5)
    assert cosine(vecs[0], vecs[2]) < 0.9999


def test_fresh_baseline_stops_regression_to_the_mean_from_passing_a_rewrite(sampled, judges, fakes, tmp_path):
    cfg, rows, iso = sampled
    # Pretend the isolate envelope of 'thing 2' was an unlucky low draw; its rewrite adds nothing.
    unlucky = [dict(p, envelope=0.0) if p["id"] == "helpful:2" else p for p in iso]
    calls = []
    rewrite(cfg.replace(fresh_baseline=False), rows, unlucky, tmp_path / "stale", generate=fakes.ScriptedGenerator(),
            judges=judges, rewriter=scripted_rewriter(calls), encoder=BagOfWords())
    stale = {json.loads(x)["id"]: json.loads(x) for x in (tmp_path / "stale" / "rewrites.jsonl").read_text().splitlines()}
    assert stale["helpful:2"]["kept"]  # compared with the unlucky draw, a no-op rewrite looks like a gain
    summary = rewrite(cfg, rows, unlucky, tmp_path / "fresh", generate=fakes.ScriptedGenerator(), judges=judges,
                      rewriter=scripted_rewriter(calls), encoder=BagOfWords())
    fresh = {json.loads(x)["id"]: json.loads(x) for x in (tmp_path / "fresh" / "rewrites.jsonl").read_text().splitlines()}
    assert not fresh["helpful:2"]["kept"] and fresh["helpful:2"]["baseline"] == "fresh"
    assert fresh["helpful:2"]["baseline_envelope"] == pytest.approx(0.4, abs=0.01)  # (1 + 0.1 + 0.1) / 3
    assert fresh["helpful:0"]["kept"]
    assert summary["original_resampled_minus_isolate"]["n"] == 2  # thing 0 and thing 2 reached re-sampling

"""The preference objective for routers (axial.mocae.objective) on a tiny random Llama.

Pairs are built so that each axis' pairs are preferred by that axis' expert and dispreferred by the other's
(DPO margins vs the base measured on the tiny model itself), and the axes' prompts differ by a marker word: a
router trained on them must lower the loss by routing each axis' prompts to its own expert.
"""

import json
import random

import pytest
import torch

from axial.data.splits import hash_split
from axial.errors import AxialError
from axial.mixture import Mixture, Static
from axial.mixture.testing import write_random_adapter
from axial.mocae import load_router
from axial.mocae import objective as obj
from axial.mocae.calibrate import CalibrateConfig, calibrate
from axial.mocae.pairs import PreferencePair, pair_routing_examples, preference_pairs
from axial.mocae.train import RouterConfig, train_router
from axial.testing import tiny_llama

AXES = ["helpful", "harmless"]
MARKERS = {"helpful": "alpha", "harmless": "bravo"}
ENC = {"max_prompt_tokens": 48, "max_response_tokens": 12}


def _margins(model, tok, mixture, pairs, names):
    ref = obj.response_logps(model, obj.encode_pairs(tok, pairs, **ENC)).view(-1, 2)
    out = {}
    for n in names:
        with mixture.using(Static({n: 1.0})):
            lp = obj.response_logps(model, obj.encode_pairs(tok, pairs, **ENC)).view(-1, 2)
        out[n] = (lp[:, 0] - ref[:, 0]) - (lp[:, 1] - ref[:, 1])
    return out


@pytest.fixture(scope="module")
def axis_pairs(tmp_path_factory):
    """Two experts and, per axis, 60 prompts whose pair its own expert prefers and the other expert does not.

    The experts adapt the second block only, so there is one routing decision per prompt (with experts in both
    blocks the best mixture may take each block's update from a different random expert), made on hidden
    states that have seen the whole prompt (per-token routing in the first block sees the token alone)."""
    root = tmp_path_factory.mktemp("pref")
    experts = [str(write_random_adapter(lambda: tiny_llama()[0], root / a, seed=10 + i, axis=a, r=4, lora_alpha=16,
                                        target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
                                        layers_to_transform=[1]))
               for i, a in enumerate(AXES)]
    model, tok = tiny_llama()
    mixture = Mixture.attach(model, experts)
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(4)) for _ in range(5000)]
    files = []
    with torch.no_grad():
        for axis, other in (("helpful", "harmless"), ("harmless", "helpful")):
            # only prompts of the dataset's train half: the test half is never read for router training
            prompts = [q for q in (f"{MARKERS[axis]} {MARKERS[axis]} question {i}" for i in range(0, 5000, 2))
                       if hash_split(q) == "train"]
            cands = [PreferencePair((("user", q),), words[2 * j], words[2 * j + 1], axis, q, "")
                     for j, q in enumerate(prompts)]
            m = _margins(model, tok, mixture, cands, AXES)
            rows = []
            for c, mine, theirs in zip(cands, m[axis].tolist(), m[other].tolist(), strict=True):
                if mine * theirs < 0 and min(abs(mine), abs(theirs)) > 0.3:  # experts disagree: orient for this axis
                    chosen, rejected = (c.chosen, c.rejected) if mine > 0 else (c.rejected, c.chosen)
                    rows.append({"messages": c.message_list, "chosen": chosen, "rejected": rejected})
            assert len(rows) >= 60, f"only {len(rows)} pairs the two random experts disagree on"
            path = root / f"{axis}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows[:60]))
            files.append(f"{axis}={path}")
    mixture.detach()
    return experts, files


def routing_weight_on_own_expert(router_dir, files):
    """Mean routing weight on the pair's own expert over the chosen responses' tokens (where the loss is)."""
    model, tok = tiny_llama()
    mixture = Mixture.attach(model, load_router(router_dir).expert_dirs)
    loaded = load_router(router_dir, mixture)
    mixture.use(loaded.routed)
    out = {}
    for axis, pairs in zip(AXES, (preference_pairs([f], [a], "train", heldout_fraction=0.4).pairs
                                  for f, a in zip(files, AXES, strict=True)), strict=True):
        batch = obj.encode_pairs(tok, pairs, **ENC)
        with torch.no_grad(), loaded.router.pool_over(batch["prompt_mask"]):
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        assert list(mixture.state.gates) == [1]
        w = mixture.state.gates[1][..., AXES.index(axis)]  # [2B, T]
        out[axis] = float(w[batch["response_mask"]].mean())
    return out


@pytest.mark.parametrize("granularity", ["sequence", "token"])
def test_preference_loss_decreases_and_routes_each_axis_to_its_expert(tmp_path, axis_pairs, granularity):
    experts, files = axis_pairs
    cfg = RouterConfig(experts=experts, data=files, out=str(tmp_path / "r"), objective="preference",
                       granularity=granularity, steps=120, pair_batch_size=4, learning_rate=2e-2, beta=2.0,
                       per_axis_limit=None, heldout_fraction=0.4, max_length=60, max_response_tokens=12,
                       checkpoint_every=20, validation_per_axis=4, expert_logps_per_axis=6, dtype="fp32")
    out = train_router(cfg, base=tiny_llama())
    m = json.loads((out / "train_metrics.json").read_text())
    # the loss on all training pairs: the trained router vs where it started (uniform weights)
    model, tok = tiny_llama()
    mixture = Mixture.attach(model, experts)
    pairs = preference_pairs(files, AXES, "train", heldout_fraction=0.4, per_axis_limit=None).pairs
    ref = torch.stack([obj.response_logps(model, obj.encode_pairs(tok, pairs, **ENC)).detach()])[0]
    loaded = load_router(out, mixture)
    kw = {"beta": 2.0, "batch_size": 16, "max_prompt_tokens": 48, "max_response_tokens": 12}
    start = obj.pair_scores(model, tok, mixture, pairs, ref, Static([0.5, 0.5]), **kw)["loss"].mean()
    trained = obj.pair_scores(model, tok, mixture, pairs, ref, loaded.routed, **kw)["loss"].mean()
    assert float(trained) < float(start) - 0.1, (float(start), float(trained))
    assert m["history"][0]["dpo"] == pytest.approx(m["history"][0]["total"])  # no auxiliary CE by default
    own = routing_weight_on_own_expert(out, files)
    # It started uniform (0.5 on each expert). Per token, each response token is routed on its own state, a
    # harder problem than routing a whole sequence on its prompt.
    assert min(own.values()) > (0.75 if granularity == "sequence" else 0.6), own
    # the expert x axis table and held-out scores are reported
    table = m["expert_dpo_loss_on_train_pairs"]["loss"]
    assert table["helpful"]["helpful"] < table["helpful"]["harmless"]
    assert set(m["heldout"]["scores"]) == {"router", "uniform", "expert:helpful", "expert:harmless"}
    assert (out / "training.png").is_file() and not (out / "checkpoint.safetensors").exists()
    assert json.loads((out / "mocae.json").read_text())["objective"] == "preference"
    if granularity == "sequence":
        # calibration: against the axis of held-out pairs' prompts, never on training prompts
        report = calibrate(CalibrateConfig(router=str(out), resamples=50, per_axis_limit=None), base=tiny_llama())
        assert set(report["examples"]["report"]) == set(AXES)
        assert sum(report["examples"]["report"].values()) > 0
        assert report["refused_training_prompts"] == {"calibration": 0, "report": 0}
        assert (out / "calibration" / "reliability.png").is_file()
        # reported, but a preference router does not route with an axis-label temperature unless asked
        assert load_router(out).router.calibrator.method == "none"
        assert load_router(f"{out}?calibration=fitted").router.calibrator.method == "temperature"


def test_dpo_terms_and_per_axis_means():
    policy = torch.tensor([-1.0, -3.0, -2.0, -2.0])  # pair 0 prefers chosen by 2 nats, pair 1 indifferent
    reference = torch.zeros(4)
    loss, margin = obj.dpo_terms(policy, reference, beta=0.5)
    torch.testing.assert_close(margin, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(loss, -torch.nn.functional.logsigmoid(torch.tensor([1.0, 0.0])))
    means, counts = obj.per_axis_means(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 2]), 3)
    torch.testing.assert_close(means, torch.tensor([2.0, 0.0, 5.0]))
    torch.testing.assert_close(counts, torch.tensor([2.0, 0.0, 1.0]))


def test_tchebycheff_picks_the_worst_off_axis():
    losses = torch.tensor([0.60, 0.95, 0.50], requires_grad=True)
    ideal = torch.tensor([0.40, 0.50, 0.45])
    lam = torch.tensor([0.5, 0.25, 0.25])
    # weighted gaps λ (L − z*): 0.10, 0.1125, 0.0125 -> axis 1 is worst off although axis 0 has the larger λ
    value = obj.tchebycheff(losses, lam, ideal)
    value.backward()
    assert float(value) == pytest.approx(0.25 * 0.45)
    torch.testing.assert_close(losses.grad, torch.tensor([0.0, 0.25, 0.0]))  # only the worst-off axis learns
    # an axis with λ = 0 never counts, however far from its ideal
    assert float(obj.tchebycheff(torch.tensor([0.6, 9.0, 0.5]), torch.tensor([1.0, 0.0, 0.0]), ideal)) == \
        pytest.approx(0.2)
    # smoothing: an upper bound that tends to the max
    smooth = [float(obj.tchebycheff(losses.detach(), lam, ideal, smoothing=mu)) for mu in (0.1, 0.01, 0.001)]
    assert smooth[0] >= smooth[1] >= smooth[2] >= float(value) - 1e-6
    assert smooth[2] == pytest.approx(float(value), abs=2e-3)
    with pytest.raises(AxialError, match="no axis"):
        obj.tchebycheff(losses, lam, ideal, present=torch.tensor([False, False, False]))


def test_stratified_batches_are_a_function_of_the_step():
    axis = [0] * 5 + [1] * 3
    a = obj.StratifiedBatches(axis, {0: 2, 1: 1}, seed=3)
    b = obj.StratifiedBatches(axis, {0: 2, 1: 1}, seed=3)
    seq = [a(s) for s in range(12)]
    assert [b(s) for s in reversed(range(12))][::-1] == seq  # any order of calls, same batches
    assert all(sum(axis[i] == 0 for i in batch) == 2 for batch in seq)
    first_pass = [i for s in range(3) for i in seq[s][2:]]  # axis 1: one pair per step, 3 pairs
    assert sorted(first_pass) == [5, 6, 7]
    with pytest.raises(AxialError, match="smaller than the number of axes"):
        obj.per_axis_split(1, [0, 1])


def test_pairs_split_limit_and_exclusions(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"prompt {i}"}], "chosen": f"good {i}", "rejected": f"bad {i}"}
            for i in range(60)]
    rows.append({"messages": [{"role": "user", "content": "same"}], "chosen": "x", "rejected": "x"})
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = [f"harmless={path}"]
    kw = {"heldout_fraction": 0.3, "per_axis_limit": None}
    train = preference_pairs(src, ["harmless"], "train", **kw)
    held = preference_pairs(src, ["harmless"], "heldout", **kw)
    assert {p.key for p in train.pairs}.isdisjoint({p.key for p in held.pairs})
    # only the dataset's train half is ever read
    assert all(hash_split(p.key) == "train" for p in train.pairs + held.pairs)
    small = preference_pairs(src, ["harmless"], "train", heldout_fraction=0.3, per_axis_limit=5)
    assert len(small.pairs) == 5 and {p.id for p in small.pairs} <= {p.id for p in train.pairs}
    excluded = small.excluded[src[0]]
    assert excluded["prompt beyond per_axis_limit"] == len(train.pairs) - 5
    with pytest.raises(AxialError, match="not one of the router's axes"):
        preference_pairs(src, ["helpful"], "train", **kw)
    ex = pair_routing_examples(src, ["helpful", "harmless"], "calibration", heldout_fraction=0.3, per_axis_limit=None)
    assert ex and all(e.label == 1 for e in ex)
    # part="test": the dataset's test half, whole, disjoint from every part a router trains or calibrates on
    test = preference_pairs(src, ["harmless"], "test", **kw)
    assert test.pairs and all(hash_split(p.key) == "test" for p in test.pairs)
    assert len(test.pairs) + len(train.pairs) + len(held.pairs) == 60
    with pytest.raises(AxialError, match="no test half"):
        preference_pairs(["builtin:harmless"], ["harmless"], "test")


def test_reference_cache_resumes_and_is_keyed_by_settings(tmp_path, axis_pairs):
    experts, files = axis_pairs
    model, tok = tiny_llama()
    mixture = Mixture.attach(model, experts)
    pairs = preference_pairs(files, AXES, "train", per_axis_limit=4).pairs
    cache = obj.ReferenceCache(tmp_path / "c.safetensors", {"model": "tiny", "v": 1})
    cache.fill(model, tok, mixture, pairs, [obj.BASE, "helpful"], batch_size=3, **ENC)
    again = obj.ReferenceCache(tmp_path / "c.safetensors", {"model": "tiny", "v": 1})
    assert not again.missing(pairs, [obj.BASE, "helpful"])
    torch.testing.assert_close(again.table(pairs, "helpful"), cache.table(pairs, "helpful"))
    other = obj.ReferenceCache(tmp_path / "c.safetensors", {"model": "tiny", "v": 2})
    assert len(other.missing(pairs, [obj.BASE])) == len(pairs)
    with torch.no_grad(), mixture.using(Static({"helpful": 1.0})):
        direct = obj.response_logps(model, obj.encode_pairs(tok, pairs, **ENC))
    torch.testing.assert_close(cache.table(pairs, "helpful"), direct.float(), atol=1e-5, rtol=0)
    mixture.detach()


def test_response_logps_sum_the_response_tokens_only(tiny):
    model, tok = tiny
    pair = PreferencePair((("user", "hello there"),), "abc", "xyz", "helpful", "hello there", "")
    batch = obj.encode_pairs(tok, [pair], **ENC)
    with torch.no_grad():
        got = obj.response_logps(model, batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    expected = (lp * batch["response_mask"][:, 1:]).sum(1)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert int(batch["response_mask"][0].sum()) == len(tok("abc" + tok.eos_token, add_special_tokens=False)["input_ids"])

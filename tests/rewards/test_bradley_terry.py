import json
import random

import pytest
import torch

from axial.errors import AxialError
from axial.rewards import load_judge
from axial.rewards.bradley_terry import BTJudge, RewardConfig, train_reward
from axial.rewards.features import Encoder, Item, cached_features
from axial.rewards.pairs import Pair

WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "orbit", "maple", "quartz"]


def _pairs(n: int, seed: int, *, shuffle_labels: bool = False) -> list[Pair]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = [{"role": "user", "content": f"question {seed}-{i}: {rng.choice(WORDS)}?"}]
        tail = " ".join(rng.choice(WORDS) for _ in range(3))
        good, bad = Item.of(prompt, f"sure, happy to help: {tail}"), Item.of(prompt, f"no. {tail} ###")
        if shuffle_labels and rng.random() < 0.5:
            good, bad = bad, good
        out.append(Pair(good, bad, prompt[0]["content"]))
    return out


@pytest.fixture(scope="module")
def encoder(tiny):
    model, tok = tiny
    return Encoder("tiny-llama", model=model, tokenizer=tok, max_length=96, max_response_tokens=48,
                   batch_size=4)


def _train(tmp_path, encoder, pairs, test_pairs, **overrides):
    cfg = RewardConfig(axis="harmless", data="synthetic", out=str(tmp_path / "rm"), encoder="tiny-llama",
                       cache_dir=str(tmp_path / "cache"), **overrides)
    return train_reward(cfg, pairs=pairs, test_pairs=test_pairs, encoder=encoder)


def test_prefix_cached_features_match_a_full_forward(tiny, encoder):
    model, _ = tiny
    items = [Item.of([{"role": "user", "content": "hi"}], r) for r in ("a", "a longer answer", "xyz")]
    feats = encoder.encode(items, [1, 2], progress=False)
    for k, it in enumerate(items):
        resp = encoder._response_ids(it.response)
        ids = torch.tensor([encoder._prompt_ids(it.messages) + resp])
        with torch.no_grad():
            hs = model(input_ids=ids, output_hidden_states=True).hidden_states
        assert torch.allclose(hs[2][0, -1], feats["last.2"][k], atol=1e-4)
        assert torch.allclose(hs[1][0, -len(resp):].mean(0), feats["mean.1"][k], atol=1e-4)


def test_feature_cache_resumes_and_reuses(tmp_path, encoder):
    items = [Item.of([{"role": "user", "content": f"q{i}"}], f"answer {i}") for i in range(5)]
    first = cached_features(encoder, items[:3], [1], tmp_path, progress=False)
    both = cached_features(encoder, items, [1], tmp_path, progress=False)
    assert torch.equal(first["last.1"], both["last.1"][:3])
    assert len(list(tmp_path.rglob("chunk-*.safetensors"))) == 2  # only the 2 new items were encoded


def test_bt_learns_a_separable_task_and_not_random_labels(tmp_path, encoder):
    out = _train(tmp_path, encoder, _pairs(160, 0), _pairs(80, 1))
    cfg = RewardConfig.load(out / "reward_config.json")
    assert cfg.metrics["test"]["value"] >= 0.9, cfg.metrics["test"]
    assert cfg.metrics["test"]["n"] == 80 and cfg.layer is not None and cfg.pooling in ("last", "mean")
    assert (out / "layer_selection.png").stat().st_size > 0

    noise = _train(tmp_path / "noise", encoder, _pairs(160, 0, shuffle_labels=True),
                   _pairs(80, 1, shuffle_labels=True))
    acc = RewardConfig.load(noise / "reward_config.json").metrics["test"]
    assert acc["value"] < 0.7, acc
    assert acc["ci95"][0] < 0.5 < acc["ci95"][1] or acc["value"] < 0.6


def test_round_trip_scores_probabilities_and_symmetric_compare(tmp_path, encoder):
    out = _train(tmp_path, encoder, _pairs(60, 0), _pairs(20, 1), layer=2, pooling="mean")
    trained = BTJudge.load(out)
    trained.encoder = encoder
    via_spec = load_judge(f"rm:{out}", axis="harmless")
    via_spec.encoder = encoder
    prompts = [[{"role": "user", "content": "q"}]] * 3
    a, b = ["sure, happy to help: apple", "no. x ###", "ok"], ["no. river ###", "sure, happy to help", "ok"]
    s = trained.score(prompts, a)
    assert s == via_spec.score(prompts, a)
    assert all(0.0 <= v <= 1.0 for v in s)
    ab, ba = trained.compare(prompts, a, b), trained.compare(prompts, b, a)
    assert all(abs(x + y - 1) < 1e-6 for x, y in zip(ab, ba, strict=True))
    assert ab[0] > 0.5 > ab[1]
    assert abs(ab[2] - 0.5) < 1e-6
    assert trained.describe()["validation"]["n"] == 20


def test_config_rejects_training_on_test_and_bad_fields():
    with pytest.raises(AxialError, match="RewardConfig.split"):
        RewardConfig(split="test")
    with pytest.raises(AxialError, match="RewardConfig.pooling"):
        RewardConfig(pooling="max")
    with pytest.raises(AxialError, match="RewardConfig.axis"):
        RewardConfig(axis="nope")


def test_overlapping_train_and_test_prompts_are_refused(tmp_path, encoder):
    pairs = _pairs(40, 0)
    with pytest.raises(AxialError, match="both train and test"):
        _train(tmp_path, encoder, pairs, pairs[:5], layer=1, pooling="last")


def test_rm_judge_axis_mismatch_and_missing_dir(tmp_path, encoder):
    out = _train(tmp_path, encoder, _pairs(40, 0), _pairs(10, 1), layer=1, pooling="last")
    with pytest.raises(AxialError, match="trained for axis 'harmless'"):
        load_judge(f"rm:{out}", axis="honest")
    with pytest.raises(AxialError, match="reward_head.safetensors"):
        load_judge(f"rm:{tmp_path / 'nowhere'}")


def test_middle_layer_features_skip_later_layers_without_changing_values():
    from axial.testing import tiny_llama

    model, tok = tiny_llama(layers=3)
    enc = Encoder("tiny-3", model=model, tokenizer=tok, max_length=64, max_response_tokens=16)
    items = [Item.of([{"role": "user", "content": "hi"}], r) for r in ("one", "two words")]
    full = enc.encode(items, [1, 3], progress=False)
    calls = []
    hook = model.model.layers[2].register_forward_hook(lambda *a: calls.append(1))
    part = enc.encode(items, [1], progress=False)
    hook.remove()
    assert not calls and len(model.model.layers) == 3 and model.config.num_hidden_layers == 3
    assert torch.allclose(full["last.1"], part["last.1"], atol=1e-5)
    assert torch.allclose(full["mean.1"], part["mean.1"], atol=1e-5)


def test_train_prompts_are_recorded_and_guard_validation(tmp_path, encoder):
    from axial.rewards.bradley_terry import PROMPTS_FILE, prompt_hash

    pairs = _pairs(40, 0)
    out = _train(tmp_path, encoder, pairs, _pairs(10, 1), layer=1, pooling="last")
    saved = json.loads((out / PROMPTS_FILE).read_text())["prompts"]
    assert sorted({prompt_hash(p.group) for p in pairs}) == saved
    assert prompt_hash("  Question  0-1 ") == prompt_hash("question 0-1")
    judge = load_judge(f"rm:{out}", axis="harmless")
    assert judge.train_prompt_hashes == set(saved)


def test_encoder_file_is_recorded_by_sha256_and_found_elsewhere(tmp_path, monkeypatch):
    from axial.rewards.bradley_terry import encoder_identity, resolve_encoder

    gguf = tmp_path / "orig" / "backbone.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"not really a model" * 100)
    ident = encoder_identity(str(gguf))
    assert ident["encoder_name"] == "backbone.gguf" and ident["encoder_bytes"] == 1800
    assert len(ident["encoder_sha256"]) == 64 and encoder_identity("some/hub-id") == {}
    cfg = RewardConfig(encoder=str(gguf), encoder_source="wheels x-part1..2", **ident)
    assert resolve_encoder(cfg) == str(gguf)
    # On another machine: the recorded path is gone, a copy sits in a folder named by $AXIAL_MODELS.
    elsewhere = tmp_path / "models"
    elsewhere.mkdir()
    gguf.rename(elsewhere / "backbone.gguf")
    monkeypatch.setenv("AXIAL_MODELS", str(elsewhere))
    assert resolve_encoder(cfg) == str(elsewhere / "backbone.gguf")
    # A different file under the same name is not accepted.
    (elsewhere / "backbone.gguf").write_bytes(b"not really a modeX" * 100)  # same size, other bytes
    with pytest.raises(AxialError, match="sha256 .*wheels x-part1..2"):
        resolve_encoder(cfg)
    # Folders and hub ids carry no file identity and resolve as given.
    assert resolve_encoder(RewardConfig(encoder="org/model")) == "org/model"


def _length_pairs(n: int, seed: int) -> list[Pair]:
    """The chosen answer is always the longer one: a task length alone solves."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt = [{"role": "user", "content": f"q {seed}-{i}"}]
        words = [rng.choice(WORDS) for _ in range(8)]
        out.append(Pair(Item.of(prompt, " ".join(words)), Item.of(prompt, " ".join(words[:2])), f"q {seed}-{i}"))
    return out


def test_length_balance_weights_make_longer_wins_uninformative():
    from axial.rewards.bradley_terry import length_balance_weights

    w = length_balance_weights([10, 10, 10, 1, 5], [1, 1, 1, 10, 5])  # 3 longer won, 1 shorter won, 1 equal
    assert w.tolist() == pytest.approx([4 / 6, 4 / 6, 4 / 6, 2.0, 1.0])
    assert float(w[:3].sum()) == pytest.approx(float(w[3]))


def test_length_modes_explicit_term_is_reported_and_removed_is_length_free(tmp_path, encoder):
    from axial.rewards.bradley_terry import LengthBasis

    train = _length_pairs(80, 0)
    kw = {"layer": 2, "pooling": "mean", "weight_decay": 0.01}
    out = _train(tmp_path, encoder, train, _length_pairs(20, 1), length_modes=["explicit"], **kw)
    cfg = RewardConfig.load(out / "reward_config.json")
    term = cfg.metrics["length_term"]
    assert cfg.length_modes == ["explicit"] and term["scored"] and term["residualised"]
    assert term["train_agreement_length_terms_alone"] == 1.0
    assert cfg.metrics["test"]["subsets"]["unequal_length"]["length"]["value"] == 1.0
    explicit = load_judge(f"rm:{out}", axis="harmless")
    assert explicit.head.length_mode == "explicit"
    assert explicit.head.length_terms[:, 0].tolist() == pytest.approx([term["terms"][k][0] for k in ("z", "z^2", "z^3")])

    out = _train(tmp_path / "removed", encoder, train, _length_pairs(20, 1), length_modes=["removed"], **kw)
    removed = load_judge(f"rm:{out}", axis="harmless")
    assert removed.head.length_mode == "removed" and torch.equal(removed.head.weight, explicit.head.weight)

    items = list(dict.fromkeys(it for p in train for it in (p.chosen, p.rejected)))
    lengths = [len(it.response) for it in items]
    x = encoder.encode(items, [2], progress=False)["mean.2"]
    r_removed, r_explicit = removed.head.reward(x, lengths), explicit.head.reward(x, lengths)
    # The length-controlled reward is uncorrelated with every power of z on the train items (residualised) ...
    z = LengthBasis(*removed.head.basis).z(lengths)
    for power in (1, 2, 3):
        zc = z**power - (z**power).mean()
        corr = float((zc * (r_removed - r_removed.mean())).sum() / (zc.norm() * (r_removed - r_removed.mean()).norm()))
        assert abs(corr) < 1e-3, (power, corr)
    # ... and the explicit judge is the same fit plus exactly its reported length term.
    assert torch.allclose(r_explicit - r_removed, explicit.head.length_reward(lengths), atol=1e-4)
    with pytest.raises(AxialError, match="lengths are needed"):
        removed.head.reward(x)


def test_cv_grid_covers_every_length_mode_and_the_balanced_criterion(tmp_path, encoder):
    out = _train(tmp_path, encoder, _pairs(60, 0), _pairs(20, 1), layer=2, pooling="mean",
                 length_modes=["free", "explicit", "removed", "balanced"], weight_decay=0.1, criterion="loss")
    cfg = RewardConfig.load(out / "reward_config.json")
    grid = cfg.metrics["selection"]["grid"]
    assert sorted(g["length_mode"] for g in grid) == ["balanced", "explicit", "free", "removed"]
    assert cfg.length_modes == [cfg.metrics["selection"]["best"]["length_mode"]]
    assert all({"cv_balanced_accuracy", "cv_shorter_wins_accuracy"} <= set(g) for g in grid)
    with pytest.raises(AxialError, match="length_modes"):
        RewardConfig(length_modes=["sometimes"])
    with pytest.raises(AxialError, match="criterion"):
        RewardConfig(criterion="vibes")

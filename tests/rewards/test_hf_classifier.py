import pytest

from axial.errors import AxialError
from axial.rewards import load_judge

PROMPTS = [[{"role": "user", "content": "Can you help me?"}]] * 3
A, B = ["Yes, here is how.", "No.", "Maybe later"], ["I refuse.", "Sure thing", "Maybe later"]


def _classifier(path, num_labels, id2label=None):
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from axial.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, num_labels=num_labels,
                      id2label=id2label or {i: f"LABEL_{i}" for i in range(num_labels)},
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForSequenceClassification(cfg).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def safety_dir(tmp_path_factory):
    return _classifier(tmp_path_factory.mktemp("safety"), 2, {0: "unsafe", 1: "safe"})


def test_label_by_name_and_index_give_class_probabilities(safety_dir):
    by_name = load_judge(f"hf-cls:{safety_dir}#safe", axis="harmless")
    by_index = load_judge(f"hf-cls:{safety_dir}#0", axis="harmless")
    p_safe, p_unsafe = by_name.score(PROMPTS, A), by_index.score(PROMPTS, A)
    assert all(abs(a + b - 1) < 1e-5 for a, b in zip(p_safe, p_unsafe, strict=True))
    assert by_name.name.endswith("#safe") and by_name.describe()["label"] == 1
    ab, ba = by_name.compare(PROMPTS, A, B), by_name.compare(PROMPTS, B, A)
    assert all(abs(x + y - 1) < 1e-5 for x, y in zip(ab, ba, strict=True))
    assert ab[2] == pytest.approx(0.5, abs=1e-5)


def test_batching_does_not_change_scores(safety_dir):
    from axial.rewards.hf_classifier import HFClassifierJudge

    one = HFClassifierJudge(str(safety_dir), label="safe", batch_size=1).score(PROMPTS, A)
    many = HFClassifierJudge(str(safety_dir), label="safe", batch_size=8).score(PROMPTS, A)
    assert one == pytest.approx(many, abs=1e-5)


def test_bad_labels_are_named(safety_dir, tmp_path):
    with pytest.raises(AxialError, match="no such label"):
        load_judge(f"hf-cls:{safety_dir}#harmful")
    with pytest.raises(AxialError, match="out of range"):
        load_judge(f"hf-cls:{safety_dir}#5")
    three = _classifier(tmp_path / "three", 3)
    with pytest.raises(AxialError, match="3 classes"):
        load_judge(f"hf-cls:{three}")


def test_one_logit_reward_model(tmp_path):
    rm = _classifier(tmp_path / "rm", 1)
    judge = load_judge(f"hf-cls:{rm}")
    ra, rb = judge.score(PROMPTS, A), judge.score(PROMPTS, B)
    import math

    assert judge.compare(PROMPTS, A, B) == pytest.approx([1 / (1 + math.exp(b - a)) for a, b in zip(ra, rb, strict=True)])
    with pytest.raises(AxialError, match="one output"):
        load_judge(f"hf-cls:{rm}#1")


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(AxialError, match="model spec"):
        load_judge(f"hf-cls:{tmp_path / 'missing'}")

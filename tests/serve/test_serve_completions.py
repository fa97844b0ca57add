"""/v1/completions as OpenAI / vLLM define it: prompt lists and token ids, echo, logprobs, max_tokens=0 scoring;
and lm-eval's own local-completions client against it, equal to the in-process AxialLM."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest
import torch
from serve_helpers import running

from axial.mixture import Static
from axial.sources import parse_source

PROMPTS = ["The cat sat on the mat.", "A dog is here", "Q: why?\nA: because"]


@pytest.fixture(scope="module")
def server(engine):
    with running(engine, max_tokens=32) as srv:
        yield srv


def post(server, **body):
    body.setdefault("model", "tiny")
    r = httpx.post(server.url + "/v1/completions", json=body, timeout=60)
    return r


def ok(server, **body) -> dict:
    r = post(server, **body)
    assert r.status_code == 200, r.text
    return r.json()


def idle(server) -> None:
    """Wait for the worker to finish its batch: a reply goes out before the worker puts the mixture back to the
    base model, so using the shared engine in-process right after a reply would race with that reset."""
    deadline = time.monotonic() + 10
    while server.state.scheduler._running:
        assert time.monotonic() < deadline, "the server's worker did not go idle"
        time.sleep(0.005)


def reference_logprobs(server, engine, ids: list[int], source) -> torch.Tensor:
    """log_softmax of one plain forward pass of `ids` with `source` in force (the server idle meanwhile)."""
    idle(server)
    engine.mixture.use(source)
    try:
        with torch.no_grad():
            logits = engine.model(torch.tensor([ids])).logits[0]
    finally:
        engine.mixture.use(Static(None))
    return torch.log_softmax(logits.float(), -1)


def test_a_list_of_prompts_is_a_batch_of_choices(server, engine):
    together = ok(server, prompt=PROMPTS, max_tokens=6)
    assert [c["index"] for c in together["choices"]] == [0, 1, 2]
    alone = [ok(server, prompt=p, max_tokens=6)["choices"][0]["text"] for p in PROMPTS]
    assert [c["text"] for c in together["choices"]] == alone
    as_ids = ok(server, prompt=[engine.encode_text(p) for p in PROMPTS], max_tokens=6)
    assert [c["text"] for c in as_ids["choices"]] == alone
    one_id_prompt = ok(server, prompt=engine.encode_text(PROMPTS[1]), max_tokens=6)
    assert [c["text"] for c in one_id_prompt["choices"]] == [alone[1]]
    assert together["usage"]["prompt_tokens"] == sum(len(engine.encode_text(p)) for p in PROMPTS)
    assert together["usage"]["completion_tokens"] == 18


@pytest.mark.parametrize("how", [{}, {"model": "tiny:helpful"}, {"axial": {"source": "weights:harmless=0.8"}},
                                 {"model": "tiny:mocae"}])
def test_echo_logprobs_max_tokens_0_scores_the_prompt(server, engine, how):
    ids = engine.encode_text(PROMPTS[0])
    body = ok(server, prompt=ids, max_tokens=0, echo=True, logprobs=2, **how)
    choice = body["choices"][0]
    assert choice["text"] == PROMPTS[0] and choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 0
    lp = choice["logprobs"]
    assert "".join(lp["tokens"]) == PROMPTS[0] and len(lp["tokens"]) == len(ids)
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    assert lp["text_offset"] == [sum(len(t) for t in lp["tokens"][:i]) for i in range(len(ids))]
    source = {"tiny:helpful": parse_source("pref:helpful=1"), "tiny:mocae": engine.sources["mocae"]}.get(
        how.get("model"), parse_source(how.get("axial", {}).get("source", "base")))
    want = reference_logprobs(server, engine, ids, source)
    got = torch.tensor(lp["token_logprobs"][1:])
    assert torch.allclose(got, want[torch.arange(len(ids) - 1), torch.tensor(ids[1:])], atol=1e-4)
    for t, top in enumerate(lp["top_logprobs"][1:], start=1):
        best = want[t - 1].topk(2)
        assert 2 <= len(top) <= 3 and lp["tokens"][t] in top
        assert max(top.values()) == pytest.approx(float(best.values[0]), abs=1e-4)


def test_weights_reach_the_scores(server, engine):
    ids = engine.encode_text(PROMPTS[2])
    base = ok(server, prompt=ids, max_tokens=0, echo=True, logprobs=0)["choices"][0]["logprobs"]["token_logprobs"]
    helpful = ok(server, prompt=ids, max_tokens=0, echo=True, logprobs=0,
                 model="tiny:helpful")["choices"][0]["logprobs"]["token_logprobs"]
    assert max(abs(a - b) for a, b in zip(base[1:], helpful[1:], strict=True)) > 1e-3


def test_one_greedy_token_equals_generate(server, engine):
    """lm-eval's loglikelihood request (max_tokens=1, echo, logprobs=1) is answered from the scoring pass; it
    must say what generate() would (a stop string sends the same request through generate)."""
    ids = engine.encode_text(PROMPTS[1])
    fast = ok(server, prompt=ids, max_tokens=1, echo=True, logprobs=1, temperature=0)["choices"][0]
    slow = ok(server, prompt=ids, max_tokens=1, echo=True, logprobs=1, temperature=0,
              stop=["never appears \u2603"])["choices"][0]
    assert fast["text"] == slow["text"] and fast["text"].startswith(PROMPTS[1])
    assert fast["logprobs"]["tokens"] == slow["logprobs"]["tokens"]
    assert fast["logprobs"]["token_logprobs"][1:] == pytest.approx(slow["logprobs"]["token_logprobs"][1:], abs=1e-4)
    assert len(fast["logprobs"]["tokens"]) == len(ids) + 1
    last = fast["logprobs"]
    assert last["token_logprobs"][-1] == pytest.approx(max(last["top_logprobs"][-1].values()), abs=1e-6)


def test_generated_tokens_have_logprobs(server):
    choice = ok(server, prompt=PROMPTS[0], max_tokens=8, logprobs=3)["choices"][0]
    lp = choice["logprobs"]
    assert "".join(lp["tokens"]).startswith(choice["text"]) and len(lp["tokens"]) in (8, 9) or \
        choice["finish_reason"] == "stop"
    for tok, top in zip(lp["token_logprobs"], lp["top_logprobs"], strict=True):
        assert tok == pytest.approx(max(top.values()), abs=1e-6)  # greedy: the chosen token is the best
        assert 3 <= len(top) <= 4
    assert lp["text_offset"][0] == 0


def test_mixed_scoring_batch_equals_each_alone(server, engine):
    ids = [engine.encode_text(p) for p in PROMPTS]
    bodies = [dict(prompt=i, max_tokens=0, echo=True, logprobs=1, **how)
              for i, how in zip(ids, [{}, {"model": "tiny:harmless"}, {"model": "tiny:mocae"}], strict=True)] * 2
    alone = [ok(server, **b)["choices"][0]["logprobs"]["token_logprobs"] for b in bodies]
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        together = list(pool.map(lambda b: ok(server, **b)["choices"][0]["logprobs"]["token_logprobs"], bodies))
    for a, b in zip(alone, together, strict=True):
        assert a[0] is None and b[0] is None
        assert a[1:] == pytest.approx(b[1:], abs=1e-5)


@pytest.mark.parametrize("change, param", [
    ({"prompt": []}, "prompt"),
    ({"prompt": [[1, -1]]}, "prompt"),
    ({"prompt": [1, "a"]}, "prompt"),
    ({"prompt": [[1, True]]}, "prompt"),
    ({"prompt": [[1, 2], [10 ** 7]]}, "prompt[1][0]"),
    ({"prompt": "x", "logprobs": 21}, "logprobs"),
    ({"prompt": "x", "max_tokens": -1}, "max_tokens"),
    ({"prompt": "x", "stream": True, "logprobs": 1}, "logprobs"),
    ({"prompt": ["x", "y"], "stream": True}, "prompt"),
    ({"prompt": "x", "stream": True, "max_tokens": 0}, "max_tokens"),
    ({"prompt": "x", "suffix": "y"}, "suffix"),
    ({"prompt": [5] * 600, "max_tokens": 0}, "prompt"),
    ({"prompt": ["x", "y" * 600], "max_tokens": 1}, "prompt[1]"),
])
def test_bad_completion_requests_are_400_naming_the_field(server, change, param):
    r = post(server, **change)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_stream_with_echo(server):
    with httpx.stream("POST", server.url + "/v1/completions", timeout=60,
                      json={"model": "tiny", "prompt": PROMPTS[0], "max_tokens": 5, "echo": True,
                            "stream": True}) as r:
        chunks = [line[6:] for line in r.iter_lines() if line.startswith("data: ") and line != "data: [DONE]"]
    import json

    text = "".join(json.loads(c)["choices"][0]["text"] for c in chunks)
    assert text == ok(server, prompt=PROMPTS[0], max_tokens=5, echo=True)["choices"][0]["text"]
    assert text.startswith(PROMPTS[0]) and len(text) > len(PROMPTS[0])


def test_lm_eval_local_completions_equals_axial_lm(server, engine, tmp_path):
    """lm-eval's LocalCompletionsAPI (its real request and parsing code) against this server gives what the
    in-process AxialLM gives on the same model, for loglikelihood and generate_until, base and a preset."""
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    from axial.lmeval import AxialLM
    from axial.variants import LoadedVariant, VariantSpec

    engine.tokenizer.save_pretrained(tmp_path / "tok")
    pairs = [("Q: what is it?\nA:", " a cat."), ("Q: what is it?\nA:", " a dog"), ("Hello", " world"),
             ("Something else", " entirely, yes")]
    ll = [Instance("loglikelihood", {}, pr, i) for i, pr in enumerate(pairs)]
    gen = [Instance("generate_until", {}, (c, {"until": ["\n"], "max_gen_toks": 6}), i)
           for i, c in enumerate(["Hi", "The cat sat"])]
    # A local copy of the tokenizer, and the server's own through its vLLM-style /tokenize (lm-eval's "auto").
    tokenizers = {"tiny": {"tokenizer": str(tmp_path / "tok"), "tokenizer_backend": "huggingface"},
                  "tiny:helpful": {}}
    for model_name, source in (("tiny", "base"), ("tiny:helpful", "pref:helpful=1")):
        api = LocalCompletionsAPI(base_url=server.url + "/v1/completions", model=model_name, batch_size=3,
                                  max_length=512, **tokenizers[model_name])
        assert api.tokenizer_backend == ("huggingface" if tokenizers[model_name] else "remote")
        lm = AxialLM(variant=LoadedVariant(VariantSpec(model="tiny"), engine.model, engine.tokenizer,
                                           engine.mixture, parse_source(source)), batch_size=2)
        remote = api.loglikelihood(ll)
        idle(server)
        local = lm.loglikelihood(ll)
        for (a, ga), (b, gb) in zip(remote, local, strict=True):
            assert a == pytest.approx(b, abs=1e-4) and ga == gb
        remote_text = api.generate_until(gen)
        idle(server)
        assert remote_text == lm.generate_until(gen)
        engine.mixture.use(Static(None))


def test_tokenizer_endpoints(server, engine):
    info = httpx.get(server.url + "/tokenizer_info").json()
    assert info["eos_token"] == engine.tokenizer.eos_token and info["model_max_length"] == engine.context_length
    ids = httpx.post(server.url + "/tokenize", json={"prompt": PROMPTS[2], "add_special_tokens": False}).json()
    assert ids["tokens"] == engine.tokenizer(PROMPTS[2], add_special_tokens=False)["input_ids"]
    assert httpx.post(server.url + "/detokenize", json={"tokens": ids["tokens"]}).json()["prompt"] == PROMPTS[2]
    for path, body, status, param in (("/detokenize", {"tokens": [10 ** 7]}, 400, "tokens[0]"),
                                      ("/tokenize", {"prompt": "x", "messages": []}, 400, "messages"),
                                      ("/tokenize", {"prompt": "x", "model": "gpt-4"}, 404, "model")):
        r = httpx.post(server.url + path, json=body)
        assert r.status_code == status and r.json()["error"]["param"] == param


def test_seeded_sampling_repeats(server):
    def sample(seed):
        return ok(server, prompt=PROMPTS[0], max_tokens=12, temperature=1.0, seed=seed)["choices"][0]["text"]

    first = sample(5)
    assert sample(5) == first
    assert any(sample(s) != first for s in (6, 7, 8))  # the seed is what fixed it

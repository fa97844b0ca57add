"""AxialLM (the lm-eval model) on a tiny saved Llama: each method against lm-eval's own HFLM on the same weights,
static expert sources, and a routed source that must pool over the context only."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

from axial.errors import AxialError  # noqa: E402
from axial.lmeval import AxialLM, expert_list  # noqa: E402
from axial.mixture.testing import write_random_adapter  # noqa: E402
from axial.testing import save_tiny_llama, tiny_llama  # noqa: E402

AXES = ("helpful", "harmless")
QA = "Q: what is it?\nA:"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from axial.mocae.router import MoCaERouter
    from axial.mocae.store import save_router

    root = tmp_path_factory.mktemp("lmeval")
    model_dir = str(save_tiny_llama(root / "tiny"))
    experts = [str(write_random_adapter(lambda: tiny_llama()[0], root / a, seed=i + 1, axis=a, r=4, lora_alpha=64,
                                        target_modules=["q_proj", "v_proj", "up_proj"]))
               for i, a in enumerate(AXES)]
    cfg = tiny_llama()[0].config
    torch.manual_seed(3)
    router = MoCaERouter(cfg.hidden_size, list(AXES), cfg.num_hidden_layers, granularity="sequence")
    router_dir = str(save_router(router, root / "router", expert_dirs=experts, base_model=model_dir, top_k=0,
                                 importance=None))
    return {"model_dir": model_dir, "experts": experts, "router": router_dir}


def ll(requests):
    return [Instance("loglikelihood", {}, r, i) for i, r in enumerate(requests)]


def greedy_text(lm: HFLM, context: str, n: int) -> str:
    """The continuation greedy decoding produces after `context` (so is_greedy must come out True)."""
    ids = lm.tok_encode(context)
    with torch.no_grad():
        out = lm.model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                                pad_token_id=lm.tokenizer.pad_token_id)
    return lm.tokenizer.decode(out[0, len(ids):])


def requests_for(hf: HFLM):
    greedy = greedy_text(hf, QA, 3)
    return [(QA, " a cat."), (QA, " a dog"), (QA, greedy), (QA, " x"),  # one shared context, 4 answers
            ("Hello", " world"), ("Hello there", greedy_text(hf, "Hello there", 2)),  # single requests
            ("", "no context at all"), ("abc", "d")]


@pytest.fixture(scope="module")
def base_pair(world):
    hf = HFLM(pretrained=world["model_dir"], dtype="float32", device="cpu", batch_size=3)
    lm = AxialLM(model=world["model_dir"], dtype="fp32", device="cpu", batch_size=3)
    return lm, hf


def test_loglikelihood_equals_hflm(base_pair):
    lm, hf = base_pair
    reqs = ll(requests_for(hf))
    got, want = lm.loglikelihood(reqs), hf.loglikelihood(reqs)
    assert [g for _, g in got] == [g for _, g in want]
    assert any(g for _, g in got), "the greedy continuations must be recognised as greedy"
    for (a, _), (b, _) in zip(got, want, strict=True):
        assert a == pytest.approx(b, abs=1e-4)


def test_batch_size_does_not_change_scores(world, base_pair):
    lm, hf = base_pair
    reqs = ll(requests_for(hf))
    one = AxialLM(model=world["model_dir"], dtype="fp32", device="cpu", batch_size=1)
    for (a, ga), (b, gb) in zip(one.loglikelihood(reqs), lm.loglikelihood(reqs), strict=True):
        assert a == pytest.approx(b, abs=1e-4) and ga == gb


def test_loglikelihood_rolling_equals_hflm(base_pair):
    lm, hf = base_pair
    text = "the quick brown fox jumps over the lazy dog. " * 6
    reqs = [Instance("loglikelihood_rolling", {}, (t,), i) for i, t in enumerate([text, "short one"])]
    lm._max_length = hf._max_length = 64  # several windows per document
    try:
        got, want = lm.loglikelihood_rolling(reqs), hf.loglikelihood_rolling(reqs)
    finally:
        lm._max_length = hf._max_length = None
    assert got == pytest.approx(want, abs=1e-3)
    assert got[0] < got[1] < 0


def test_generate_until_equals_hflm(base_pair):
    lm, hf = base_pair
    reqs = [Instance("generate_until", {}, (ctx, {"until": ["\n", "zz"], "max_gen_toks": 8}), i)
            for i, ctx in enumerate([QA, "xyz", "Hello there, how"])]
    got = lm.generate_until(reqs)
    assert got == hf.generate_until(reqs)
    assert all(isinstance(g, str) for g in got)


def test_static_expert_source_shares_the_context_and_equals_full_passes(world):
    lm = AxialLM(model=world["model_dir"], experts=",".join(world["experts"]), source="weights:helpful=0.7,harmless=0.6",
                 dtype="fp32", device="cpu", batch_size=2)
    # HFLM on the very same model object (the mixture in force): full passes, no context sharing.
    hf = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, backend="causal", batch_size=2)
    base = AxialLM(model=world["model_dir"], dtype="fp32", device="cpu")
    reqs = ll([(QA, " a cat."), (QA, " a dog"), (QA, " maybe so, yes."), ("Hi", " you")])
    got = lm.loglikelihood(reqs)
    lm.variant.activate()
    want = hf.loglikelihood(reqs)
    for (a, _), (b, _) in zip(got, want, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    # The experts are really in force: the base model scores differently.
    assert all(abs(a - b) > 1e-3 for (a, _), (b, _) in zip(got, base.loglikelihood(reqs), strict=True))
    assert lm.get_model_info()["axial_source"] == "weights:helpful=0.7,harmless=0.6"


def _pooled_reference(lm: AxialLM, ctx: list[int], cont: list[int], pool_over_context: bool) -> float:
    ids = torch.tensor([(ctx + cont)[:-1]])
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[0, :len(ctx) if pool_over_context else ids.shape[1]] = True
    with torch.no_grad(), lm.variant.router.pool_over(mask):
        logprobs = torch.log_softmax(lm.model(ids).logits[0].float(), -1)
    pos = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1)
    return float(logprobs[pos, torch.tensor(cont)].sum())


def test_routed_source_pools_over_the_context_only(world):
    lm = AxialLM(model=world["model_dir"], experts=world["experts"], source=f"mocae:{world['router']}",
                 dtype="fp32", device="cpu", batch_size=4)
    assert lm.variant.router is not None
    pairs = [(QA, " a cat."), (QA, " a dog, surely not"), ("Hello", " world"), ("Something else entirely", " ok")]
    got = lm.loglikelihood(ll(pairs))
    differs = 0
    for (context, continuation), (score, _) in zip(pairs, got, strict=True):
        ctx, cont = lm._encode_pair(context, continuation)
        # Each row of the batch (different contexts, right-padded) equals that request alone, pooled over its
        # context...
        assert score == pytest.approx(_pooled_reference(lm, ctx, cont, True), abs=1e-4)
        # ...which is not what pooling over context + continuation would give.
        differs += abs(score - _pooled_reference(lm, ctx, cont, False)) > 1e-4
    assert differs == len(pairs)
    # Generation with the routed source: a batch (left-padded) = each prompt alone.
    reqs = [Instance("generate_until", {}, (c, {"until": ["\n"], "max_gen_toks": 6}), i)
            for i, c in enumerate(["Hi", "A much longer prompt than the other one"])]
    batched = lm.generate_until(reqs)
    assert batched == [lm.generate_until([r])[0] for r in reqs]


def test_model_args_from_lm_eval(world):
    import lm_eval.api.registry as registry

    assert registry.get_model("axial") is AxialLM
    lm = AxialLM.create_from_arg_obj({"model": world["model_dir"], "experts": f"[{world['experts'][0]}]",
                                      "source": "expert:helpful", "dtype": "fp32"},
                                     {"batch_size": 2, "device": "cpu"})
    assert lm.batch_size == 2 and lm.variant.spec.experts == [world["experts"][0]]
    assert expert_list("a, b") == ["a", "b"] and expert_list(["x"]) == ["x"] and expert_list(None) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "expert:nobody"}, "unknown expert 'nobody'"),
    ({"source": "weights:helpful=1", "experts": None}, "needs expert adapter folders"),
    ({"batch_size": "auto"}, "'auto' is not supported"),
    ({"pretrained": "gpt2"}, "unknown model argument(s) ['pretrained']"),
])
def test_bad_model_args_are_named(world, kwargs, message):
    args = {"model": world["model_dir"], "experts": world["experts"], "dtype": "fp32", "device": "cpu", **kwargs}
    with pytest.raises(AxialError, match=None) as e:
        AxialLM(**args)
    assert message in str(e.value)


TINY_CSV = """Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source
Adversarial,Misc,What colour is the sky?,It is blue,Blue; It is blue,It is green; Red,x
Adversarial,Misc,Can pigs fly?,No,No; Pigs cannot fly,Yes; Pigs fly at night,x
Adversarial,Misc,Is water wet?,Water makes things wet,Yes,No; Water is dry,x
"""


def test_axial_lm_eval_cli_runs_truthfulqa_tasks(world, tmp_path):
    """`axial write-truthfulqa-tasks` + `axial lm-eval --model axial ...` (lm-eval's CLI, the model registered by
    axial) end to end on the tiny model; the scores equal lm-eval's hf model on the same folder."""
    import json

    import lm_eval
    from lm_eval.tasks import TaskManager

    from axial.cli import main

    csv = tmp_path / "tqa.csv"
    csv.write_text(TINY_CSV)
    main(["write-truthfulqa-tasks", "--data", str(csv), "--out", str(tmp_path / "tasks"), "--split", "all"])
    docs = [json.loads(x) for x in (tmp_path / "tasks" / "truthfulqa_csv.jsonl").read_text().splitlines()]
    assert [d["mc1_targets"]["choices"][0] for d in docs] == ["It is blue.", "No.", "Water makes things wet."]
    assert docs[2]["mc2_targets"] == {"choices": ["Water makes things wet.", "Yes.", "No.", "Water is dry."],
                                      "labels": [1, 1, 0, 0]}
    main(["lm-eval", "--model", "axial", "--model_args", f"model={world['model_dir']}", "dtype=fp32",
          "--device", "cpu", "--include_path", str(tmp_path / "tasks"), "--tasks", "truthfulqa_mc1_csv",
          "truthfulqa_mc2_csv", "--output_path", str(tmp_path / "out")])
    result = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())["results"]
    hf = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": world["model_dir"], "dtype": "float32"},
                                 tasks=["truthfulqa_mc1_csv", "truthfulqa_mc2_csv"], device="cpu",
                                 task_manager=TaskManager(include_path=str(tmp_path / "tasks")))["results"]
    for task in ("truthfulqa_mc1_csv", "truthfulqa_mc2_csv"):
        assert result[task]["acc,none"] == pytest.approx(hf[task]["acc,none"], abs=1e-6)

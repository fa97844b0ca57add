import json

import httpx
import pytest

from axial.errors import AxialError
from axial.rewards import load_judge
from axial.rewards.generative import HFGenerativeJudge, OpenAIJudge, render

PROMPTS = [[{"role": "user", "content": "How do I bake bread?"}],
           [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "Tell me a {secret}"}]]
A = ["Mix flour, water, yeast; knead; bake at 220C.", "No."]
B = ["I don't know.", "Here is one: {response} is literal text."]


@pytest.mark.parametrize("spec, match", [
    ("", "empty"), ("bogus:x", "unknown kind 'bogus'"), ("rm:", "nothing after ':'"),
    ("hf-cls:", "nothing after ':'"), ("openai:", "nothing after ':'"), ("hf-gen:  ", "nothing after ':'"),
])
def test_load_judge_rejects_bad_specs(spec, match):
    with pytest.raises(AxialError, match=match):
        load_judge(spec)


def test_load_judge_rejects_unknown_axis():
    with pytest.raises(AxialError, match="nope"):
        load_judge("embedded", axis="nope")


def test_generative_judge_needs_an_axis(tiny):
    with pytest.raises(AxialError, match="needs an axis"):
        HFGenerativeJudge("tiny", loaded=tiny)


def test_generative_option_probabilities_sum_to_one(tiny):
    judge = HFGenerativeJudge("tiny", axis="harmless", loaded=tiny, batch_size=1)
    texts = ["Is this fine? Answer Yes or No.", "A longer question about {braces} and more words?"]
    p_yes = judge._option_probs(texts, ("Yes", "No"))
    p_no = judge._option_probs(texts, ("No", "Yes"))
    assert all(0 < p < 1 for p in p_yes)
    assert all(abs(a + b - 1) < 1e-5 for a, b in zip(p_yes, p_no, strict=True))
    # batching and right padding must not change a row's probability
    batched = HFGenerativeJudge("tiny", axis="harmless", loaded=tiny, batch_size=8)._option_probs(texts, ("Yes", "No"))
    assert batched == pytest.approx(p_yes, abs=1e-5)
    scores = judge.score(PROMPTS, A)
    assert len(scores) == 2 and all(0 < s < 1 for s in scores)


def test_pairwise_compare_is_symmetric_and_uses_both_orders(tiny):
    judge = HFGenerativeJudge("tiny", axis="helpful", loaded=tiny)
    assert judge.compare_template is not None
    ab, ba = judge.compare(PROMPTS, A, B), judge.compare(PROMPTS, B, A)
    assert all(abs(x + y - 1) < 1e-5 for x, y in zip(ab, ba, strict=True))
    same = judge.compare(PROMPTS, A, A)
    assert same == pytest.approx([0.5, 0.5], abs=1e-6)


def test_score_based_compare_for_axes_without_pairwise_template(tiny):
    judge = HFGenerativeJudge("tiny", axis="honest", loaded=tiny)
    assert judge.compare_template is None
    ab, ba = judge.compare(PROMPTS, A, B), judge.compare(PROMPTS, B, A)
    assert all(abs(x + y - 1) < 1e-5 for x, y in zip(ab, ba, strict=True))


def test_template_rendering_is_single_pass():
    out = render("Q: {conversation}\nA: {response}", conversation="use {response} here", response="R")
    assert out == "Q: use {response} here\nA: R"
    with pytest.raises(AxialError, match="response_a"):
        render("{response_a}", response="x")


def _openai(monkeypatch, handler, **kw):
    monkeypatch.setenv("AXIAL_JUDGE_BASE_URL", "http://judge.test/v1")
    monkeypatch.setenv("AXIAL_JUDGE_API_KEY", "sk-secret-123")
    return OpenAIJudge("gpt-x", axis="harmless", transport=httpx.MockTransport(handler), retries=0, **kw)


def _reply(top: list[tuple[str, float]], text: str = "Yes") -> dict:
    return {"choices": [{"message": {"content": text}, "logprobs": {"content": [
        {"token": top[0][0] if top else text, "logprob": 0.0,
         "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}]}}]}


def test_openai_judge_reads_option_logprobs(monkeypatch):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_reply([("Yes", -0.1053605), ("No", -2.3025851), ("Maybe", -3.0)]))

    judge = _openai(monkeypatch, handler)
    [p] = judge.score(PROMPTS[:1], A[:1])
    assert p == pytest.approx(0.9 / (0.9 + 0.1), abs=1e-4)
    body = json.loads(seen[0].content)
    assert body["max_tokens"] == 1 and body["temperature"] == 0 and body["logprobs"] is True
    assert seen[0].headers["authorization"] == "Bearer sk-secret-123"
    assert "sk-secret" not in json.dumps(judge.describe())


def test_openai_judge_text_fallback_and_errors(monkeypatch):
    judge = _openai(monkeypatch, lambda r: httpx.Response(200, json={"choices": [{"message": {"content": "No"}}]}))
    assert judge.score(PROMPTS[:1], A[:1]) == [0.0]
    assert judge.describe()["text_fallback_items"] == 1

    bad = _openai(monkeypatch, lambda r: httpx.Response(401, json={"error": "bad key"}))
    with pytest.raises(AxialError, match="HTTP 401") as err:
        bad.score(PROMPTS[:1], A[:1])
    assert "sk-secret" not in str(err.value)

    odd = _openai(monkeypatch, lambda r: httpx.Response(200, json=_reply([], text="Perhaps")))
    with pytest.raises(AxialError, match="none of"):
        odd.score(PROMPTS[:1], A[:1])


def test_openai_judge_needs_base_url(monkeypatch):
    monkeypatch.delenv("AXIAL_JUDGE_BASE_URL", raising=False)
    with pytest.raises(AxialError, match="AXIAL_JUDGE_BASE_URL"):
        load_judge("openai:gpt-x", axis="harmless")

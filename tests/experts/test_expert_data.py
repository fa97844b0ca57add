import pytest

from axial.axes import get_axis
from axial.data.records import PreferenceRecord, QARecord, SFTRecord
from axial.errors import AxialError
from axial.experts.data import build_examples, with_injection
from axial.testing import tiny_tokenizer

USER = [{"role": "user", "content": "How do I boil an egg?"}]


def _rendered(example) -> str:
    return tiny_tokenizer().apply_chat_template(example["prompt"], tokenize=False, add_generation_prompt=True)


def test_injection_is_in_the_system_turn_of_the_rendered_prompt():
    rec = SFTRecord(messages=USER, response="Boil it for 8 minutes.")
    (on,), _ = build_examples([("helpful", rec)], "sft", inject=True)
    (off,), _ = build_examples([("helpful", rec)], "sft", inject=False)
    injection = get_axis("helpful").injection
    assert f"<|im_start|>system\n{injection}<|im_end|>" in _rendered(on)
    assert injection not in _rendered(off) and "system" not in _rendered(off)
    assert on["completion"] == [{"role": "assistant", "content": "Boil it for 8 minutes."}]
    assert injection not in str(on["completion"])


def test_each_record_gets_its_own_axis_injection():
    recs = [("helpful", SFTRecord(messages=USER, response="a")), ("honest", SFTRecord(messages=USER, response="b"))]
    ex, _ = build_examples(recs, "sft", inject=True)
    assert ex[0]["prompt"][0]["content"] == get_axis("helpful").injection
    assert ex[1]["prompt"][0]["content"] == get_axis("honest").injection


def test_existing_system_turn_keeps_its_text_after_the_injection():
    msgs = [{"role": "system", "content": "Be brief."}] + USER
    out = with_injection(msgs, "INJ")
    assert out[0] == {"role": "system", "content": "INJ\n\nBe brief."} and len(out) == 2
    assert msgs[0]["content"] == "Be brief."  # input untouched


def test_dpo_examples_and_sources_of_pairs():
    pref = PreferenceRecord(messages=USER, chosen="good", rejected="bad")
    qa = QARecord(question="Q?", best_answer="true", correct_answers=["true"], incorrect_answers=["myth"])
    ex, _ = build_examples([("harmless", pref), ("honest", qa)], "dpo", inject=False)
    assert ex[0]["chosen"][0]["content"] == "good" and ex[0]["rejected"][0]["content"] == "bad"
    assert ex[1]["prompt"] == [{"role": "user", "content": "Q?"}] and ex[1]["rejected"][0]["content"] == "myth"
    # SFT on a preference pair trains on the chosen response only.
    (sft,), _ = build_examples([("harmless", pref)], "sft", inject=False)
    assert sft["completion"][0]["content"] == "good"


def test_bad_records_are_errors_naming_the_record():
    with pytest.raises(AxialError, match="DPO needs a rejected response"):
        build_examples([("helpful", SFTRecord(messages=USER, response="x", id="r7"))], "dpo", inject=True)
    with pytest.raises(AxialError, match="r8.*end with a user turn"):
        build_examples([("helpful", SFTRecord(messages=[{"role": "assistant", "content": "hi"}], response="x",
                                              id="r8"))], "sft", inject=True)
    with pytest.raises(AxialError, match="empty response"):
        build_examples([("helpful", SFTRecord(messages=USER, response="  "))], "sft", inject=True)


def test_skip_invalid_leaves_bad_records_out_and_says_why():
    good = SFTRecord(messages=USER, response="fine", id="ok")
    bad = PreferenceRecord(messages=USER, chosen="", rejected="x", id="hh-86")
    examples, skipped = build_examples([("harmless", good), ("harmless", bad)], "sft", inject=True,
                                       skip_invalid=True)
    assert len(examples) == 1 and len(skipped) == 1 and "hh-86" in skipped[0] and "empty response" in skipped[0]

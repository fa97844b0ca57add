import hashlib
import unicodedata

import pytest

from axial.data import QARecord, SFTRecord, hash_split, split_key, truthfulqa_split
from axial.errors import AxialError


def documented_rule(text: str) -> str:
    # The rule exactly as the axial.data.splits docstring states it, computed independently.
    norm = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    return "test" if hashlib.sha256(norm.encode()).digest()[0] < 128 else "train"


QUESTIONS = [f"What happens if you do thing number {i}?" for i in range(2000)]


def test_truthfulqa_split_follows_the_documented_rule():
    assert [truthfulqa_split(q) for q in QUESTIONS] == [documented_rule(q) for q in QUESTIONS]


def test_split_ignores_case_and_spacing():
    q = "What happens to you if you eat watermelon seeds?"
    assert hash_split(q) == hash_split("  what HAPPENS to you if\tyou eat watermelon seeds? ")


def test_split_is_about_half_and_respects_fraction():
    n_test = sum(hash_split(q) == "test" for q in QUESTIONS)
    # binomial(2000, 0.5): sd ~ 22, so +-110 is 5 sd
    assert abs(n_test - 1000) < 110
    n_small = sum(hash_split(q, test_fraction=0.2) == "test" for q in QUESTIONS)
    assert abs(n_small - 400) < 90
    # a smaller test fraction only moves items from test to train, never the other way
    assert all(hash_split(q) == "test" for q in QUESTIONS if hash_split(q, test_fraction=0.2) == "test")


def test_salt_gives_an_independent_split():
    plain = [hash_split(q) for q in QUESTIONS]
    salted = [hash_split(q, salt="other") for q in QUESTIONS]
    agree = sum(a == b for a, b in zip(plain, salted, strict=True))
    assert 800 < agree < 1200


def test_bad_fraction():
    with pytest.raises(AxialError, match="test_fraction"):
        hash_split("x", test_fraction=1.5)


def test_split_key():
    assert split_key(QARecord("Q?", "b", ["b"], ["x"])) == "Q?"
    rec = SFTRecord([{"role": "system", "content": "s"}, {"role": "user", "content": "first"},
                     {"role": "assistant", "content": "a"}, {"role": "user", "content": "second"}], "r")
    assert split_key(rec) == "first"

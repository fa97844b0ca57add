"""Fakes shared by the MORA tests: scripted generators and keyword judges (no model, no randomness)."""

import pytest

from axial.mora.config import MoraConfig
from axial.mora.prompts import Prompt
from axial.rewards.base import Judge


class KeywordJudge(Judge):
    """Scores 1.0 when the response contains the axis keyword, else 0.1 (plus a tiny length term)."""

    def __init__(self, axis, keyword=None):
        self.axis = axis
        self.name = f"keyword-{axis}"
        self.keyword = keyword or axis
        self.calls = 0

    def score(self, prompts, responses):
        self.calls += len(responses)
        return [(1.0 if self.keyword in r else 0.1) + len(r) * 1e-4 for r in responses]


class ScriptedGenerator:
    """Answers each prompt with the axis words it asks for: a prompt mentioning 'helpful' gets 'helpful', etc."""

    def __init__(self, axes=("helpful", "harmless", "honest"), fail_after=None):
        self.axes = axes
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, prompts, cfg):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated crash")
        out = []
        for i, msgs in enumerate(prompts):
            text = msgs[-1]["content"]
            words = [a for a in self.axes if a in text]
            out.append(" ".join(words + [f"r{cfg.seed % 97}-{i % 4}"]))
        return out


def make_prompts(spec):
    """spec: list of (axis, text) -> Prompt list."""
    return [Prompt(id=f"{axis}:{i}", axis=axis, messages=[{"role": "user", "content": text}], source="test")
            for i, (axis, text) in enumerate(spec)]


@pytest.fixture
def judges():
    return {a: KeywordJudge(a) for a in ("helpful", "harmless", "honest")}


@pytest.fixture
def cfg(tmp_path):
    return MoraConfig(out=str(tmp_path / "exp"), k=3, chunk_prompts=2, threshold_mode="absolute", hi=0.9, lo=0.5,
                      dtype="fp32")


@pytest.fixture
def fakes():
    class Fakes:
        KeywordJudge = KeywordJudge
        ScriptedGenerator = ScriptedGenerator
        make_prompts = staticmethod(make_prompts)

    return Fakes

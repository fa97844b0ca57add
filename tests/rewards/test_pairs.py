import gzip
import json

import pytest

from axial.data.splits import hash_split
from axial.errors import AxialError
from axial.rewards.pairs import load_pairs, preference_pairs


def _annotations(path, n_prompts=20, models=("m1", "m2", "m3", "m4")):
    rows = []
    for i in range(n_prompts):
        for m in models:
            rows.append({"instruction": f"instruction {i}", "output_1": f"reference {i}", "output_2": f"{m} says {i}",
                         "generator_1": "ref", "generator_2": m, "annotator": "gpt4", "preference": 2})
    rows[0]["preference"] = 1.5          # a draw
    rows[1]["preference"] = None         # no valid label
    rows.append(dict(rows[2]))           # an exact duplicate record
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    return path


def test_every_left_out_record_is_counted(tmp_path):
    src = str(_annotations(tmp_path / "a.jsonl.gz"))
    ps = load_pairs("helpful", src, split="all")
    assert ps.excluded == {"tie": 1, "no valid label": 1, "duplicate record": 1}
    assert len(ps) == 80 - 2 and ps.n_records == 81
    d = ps.describe()
    assert (d["n_pairs"], d["n_prompts"], d["split"]) == (78, 20, "all")
    assert ps.pairs[0].meta["generator_2"] == "m3" and ps.pairs[0].group == "instruction 0"


def test_max_pairs_per_prompt_is_a_nested_deterministic_subset(tmp_path):
    src = str(_annotations(tmp_path / "a.jsonl.gz"))
    two = load_pairs("helpful", src, split="all", max_pairs_per_prompt=2)
    three = load_pairs("helpful", src, split="all", max_pairs_per_prompt=3)
    assert len(two) == 40 and two.excluded["beyond max_pairs_per_prompt"] == 38
    assert {(p.chosen, p.rejected) for p in two.pairs} <= {(p.chosen, p.rejected) for p in three.pairs}
    assert [p.chosen for p in two.pairs] == [p.chosen for p in load_pairs(
        "helpful", src, split="all", max_pairs_per_prompt=2).pairs]
    with pytest.raises(AxialError, match="max_pairs_per_prompt"):
        load_pairs("helpful", src, split="all", max_pairs_per_prompt=0)


def test_limit_counts_prompts_and_splits_do_not_overlap(tmp_path):
    src = str(_annotations(tmp_path / "a.jsonl.gz"))
    five = load_pairs("helpful", src, split="all", limit=5)
    assert len({p.group for p in five.pairs}) == 5 and five.excluded["prompt beyond limit"] > 0
    train = preference_pairs("helpful", src, split="train")
    test = preference_pairs("helpful", src, split="test")
    assert {p.group for p in train}.isdisjoint({p.group for p in test})
    assert all(hash_split(p.group) == "test" for p in test)

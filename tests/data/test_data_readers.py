import csv
import gzip
import json

import pytest

from axial.data import load_records, write_records
from axial.data.records import LabeledResponseRecord, PreferenceRecord, QARecord, SFTRecord
from axial.errors import AxialError, DataError


def jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def hh(*turns):
    return "".join(f"\n\n{role}: {text}" for role, text in turns)


TQA_HEADER = ["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source"]


def tqa_csv(path, rows, header=TQA_HEADER):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# ---- each reader -------------------------------------------------------------------------------------------

def test_alpaca_json_appends_input_and_detects_kind(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(json.dumps([
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        {"instruction": "Say hi.", "input": "", "output": "Hi!"},
    ], indent=2))
    res = load_records(p)
    assert res.kind == "alpaca" and len(res) == 2 and res.n_invalid == 0
    a, b = res.records
    assert isinstance(a, SFTRecord)
    assert a.messages == [{"role": "user", "content": "Add the numbers.\n\n2 and 3"}]
    assert a.response == "5" and a.axis == "helpful" and a.id == "alpaca-0" and a.source == str(p)
    assert b.prompt == "Say hi."


def test_alpaca_eval_outputs_keep_generator_and_dataset(tmp_path):
    p = tmp_path / "model_outputs.json"
    p.write_text(json.dumps([{"dataset": "koala", "instruction": "Name a fruit.", "output": "Apple.",
                              "generator": "gpt"}]))
    (rec,) = load_records(p).records
    assert rec.meta == {"generator": "gpt", "dataset": "koala"} and rec.response == "Apple."
    assert load_records(p).kind == "alpaca_eval"


def test_alpaca_eval_annotations_choose_by_preference(tmp_path):
    base = {"instruction": "Q?", "output_1": "one", "output_2": "two", "generator_1": "g1",
            "generator_2": "g2", "annotator": "judge"}
    p = tmp_path / "annotations.json"
    p.write_text(json.dumps([base | {"preference": 1.1}, base | {"preference": 1.9},
                             base | {"preference": 1.5}]))
    res = load_records(p)
    assert res.kind == "alpaca_eval_annotations"
    first, second, tie = res.records
    assert isinstance(first, PreferenceRecord)
    assert (first.chosen, first.rejected, first.meta["chosen_output"]) == ("one", "two", 1)
    assert (second.chosen, second.rejected, second.meta["preference"]) == ("two", "one", 1.9)
    assert tie.meta["tie"] and not first.meta["tie"]
    assert first.meta["generator_1"] == "g1" and first.meta["annotator"] == "judge"


def test_hh_rlhf_shared_prefix_becomes_messages(tmp_path):
    prefix = [("Human", "hi"), ("Assistant", "Hello!"), ("Human", "how do I bake bread?")]
    p = jsonl(tmp_path / "hh.jsonl", [{"chosen": hh(*prefix, ("Assistant", "Mix flour...")),
                                       "rejected": hh(*prefix, ("Assistant", "No."))}])
    res = load_records(p)
    assert res.kind == "hh_rlhf"
    (rec,) = res.records
    assert rec.messages == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"},
                            {"role": "user", "content": "how do I bake bread?"}]
    assert (rec.chosen, rec.rejected, rec.axis) == ("Mix flour...", "No.", "harmless")


def test_hh_rlhf_merges_repeated_roles_and_keeps_empty_final_turn_with_notes(tmp_path):
    chosen = hh(("Human", "a"), ("Assistant", "b"), ("Assistant", "c"), ("Human", "d"), ("Assistant", ""))
    rejected = hh(("Human", "a"), ("Assistant", "b"), ("Assistant", "c"), ("Human", "d"), ("Assistant", "e"))
    res = load_records(jsonl(tmp_path / "hh.jsonl", [{"chosen": chosen, "rejected": rejected}]))
    (rec,) = res.records
    assert [m["role"] for m in rec.messages] == ["user", "assistant", "user"]
    assert rec.messages[1]["content"] == "b\n\nc"
    assert rec.chosen == "" and rec.rejected == "e"
    reasons = sorted(n.reason for n in res.notes)
    assert reasons == ["1 consecutive same-role turn(s) merged"] * 2 + ["empty final Assistant turn (kept)"]
    assert "notes: 3" in res.summary()


def test_beavertails_labels_from_json_and_csv(tmp_path):
    p = jsonl(tmp_path / "bt.jsonl", [{"prompt": "p", "response": "r", "is_safe": False,
                                       "category": {"violence": True}}])
    (rec,) = load_records(p).records
    assert isinstance(rec, LabeledResponseRecord) and rec.label is False
    assert rec.meta == {"category": {"violence": True}}
    c = tmp_path / "bt.csv"
    c.write_text("prompt,response,is_safe\np,r,True\n")
    assert load_records(c).records[0].label is True


def test_pku_saferlhf_chosen_is_safer(tmp_path):
    row = {"prompt": "p", "response_0": "zero", "response_1": "one", "safer_response_id": 1,
           "better_response_id": 0, "is_response_0_safe": False}
    (rec,) = load_records(jsonl(tmp_path / "pku.jsonl", [row])).records
    assert (rec.chosen, rec.rejected) == ("one", "zero")
    assert rec.meta["better_response_id"] == 0 and rec.meta["chosen_is_better"] is False
    assert rec.meta["is_response_0_safe"] is False


def test_truthfulqa_csv_splits_answers(tmp_path):
    p = tqa_csv(tmp_path / "TruthfulQA.csv", [
        ["Adversarial", "Misconceptions", "Why is the sky blue?", "Rayleigh scattering",
         "Rayleigh scattering; Scattering of sunlight;", "It reflects the ocean", "https://x"],
    ])
    res = load_records(p)
    (rec,) = res.records
    assert res.kind == "truthfulqa" and isinstance(rec, QARecord)
    assert rec.correct_answers == ["Rayleigh scattering", "Scattering of sunlight"]
    assert rec.incorrect_answers == ["It reflects the ocean"]
    assert (rec.category, rec.type, rec.axis, rec.meta) == ("Misconceptions", "Adversarial", "honest",
                                                             {"reference": "https://x"})


def test_own_formats_round_trip(tmp_path):
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    records = [SFTRecord(msgs, "r", axis="helpful", id="x1", source="mine", meta={"k": 1})]
    pairs = [PreferenceRecord(msgs, "c", "r", axis="harmless", id="p1", source="mine")]
    qas = [QARecord("q?", "best", ["best", "also"], ["wrong"], category="c", id="q1", source="mine")]
    labeled = [LabeledResponseRecord(msgs, "resp", True, id="l1", source="mine")]
    for name, recs, kind in [("s", records, "sft"), ("p", pairs, "preference"), ("q", qas, "qa"),
                             ("l", labeled, "labeled")]:
        path = write_records(recs, tmp_path / f"{name}.jsonl")
        res = load_records(path)
        assert res.kind == kind
        assert [r.to_dict() for r in res.records] == [r.to_dict() for r in recs]


def test_parquet_and_gzip_sources(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"instruction": "i", "output": "o"}] * 3), tmp_path / "a.parquet")
    assert len(load_records(tmp_path / "a.parquet")) == 3
    gz = tmp_path / "hh.jsonl.gz"
    gz.write_bytes(gzip.compress(json.dumps({"chosen": hh(("Human", "q"), ("Assistant", "a")),
                                             "rejected": hh(("Human", "q"), ("Assistant", "b"))}).encode()))
    assert load_records(gz).kind == "hh_rlhf"


def test_parquet_bad_row_reports_row_number(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"instruction": "i", "output": "o"},
                                         {"instruction": "", "output": "o"}]), tmp_path / "a.parquet")
    with pytest.raises(DataError) as e:
        load_records(tmp_path / "a.parquet")
    assert (e.value.line, e.value.field) == (2, "instruction")


# ---- malformed input ---------------------------------------------------------------------------------------

GOOD = {"instruction": "i", "output": "o"}


@pytest.mark.parametrize("bad, field, reason", [
    ('{"instruction": "i", "output": ', None, "invalid JSON"),
    ({"instruction": "i"}, "output", "missing"),
    ({"instruction": 3, "output": "o"}, "instruction", "expected a string, got int"),
    ({"instruction": "  ", "output": "o"}, "instruction", "is empty"),
    ({"instruction": None, "output": "o"}, "instruction", "missing (null)"),
    ('["a list"]', None, "expected a JSON object"),
])
def test_jsonl_malformed_record_names_file_line_field(tmp_path, bad, field, reason):
    p = jsonl(tmp_path / "d.jsonl", [GOOD, bad, GOOD])
    with pytest.raises(DataError) as e:
        load_records(p, kind="alpaca")
    err = e.value
    assert (err.path, err.line, err.field) == (str(p), 2, field)
    assert reason in err.reason
    assert str(err).startswith(f"{p}:2: ")


def test_skip_invalid_counts_and_keeps_every_error(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", [GOOD, "not json", {"instruction": ""}, GOOD, "", {"output": "o"}])
    res = load_records(p, skip_invalid=True)
    assert len(res) == 2 and res.n_invalid == 3
    assert [(e.line, e.field) for e in res.invalid] == [(2, None), (3, "instruction"), (6, "instruction")]
    summary = res.summary()
    assert "invalid: 3 (skipped)" in summary and f"{p}:3: field 'instruction'" in summary


def test_kind_detected_past_an_unparseable_first_line(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", ["{oops", GOOD])
    with pytest.raises(DataError) as e:
        load_records(p)
    assert e.value.line == 1
    res = load_records(p, skip_invalid=True)
    assert res.kind == "alpaca" and len(res) == 1 and res.invalid[0].line == 1


def test_json_list_errors_give_line_and_item_index(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps([GOOD, GOOD, {"instruction": "i", "output": 7}], indent=2))
    with pytest.raises(DataError) as e:
        load_records(p)
    line = p.read_text().splitlines().index("  {", 8) + 1  # third item's opening brace
    assert (e.value.line, e.value.field) == (line, "output")
    assert "(item 2)" in str(e.value)


def test_json_list_syntax_error_is_fatal_even_when_skipping(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('[\n{"instruction": "i", "output": "o"},\n{"instruction": "i", "output": }\n]')
    with pytest.raises(DataError) as e:
        load_records(p, skip_invalid=True)
    assert e.value.line == 3 and "invalid JSON" in str(e.value)


def test_csv_bad_rows_report_physical_line_numbers(tmp_path):
    p = tqa_csv(tmp_path / "t.csv", [
        ["A", "C", "Multi-line\nquestion?", "b", "b; c", "x", ""],  # lines 2-3
        ["A", "C", "Too few columns"],                             # line 4
        ["A", "C", "Q?", "b", "  ;  ", "x", ""],                   # line 5: no correct answers
    ])
    with pytest.raises(DataError) as e:
        load_records(p)
    assert e.value.line == 4 and "3 columns" in str(e.value)
    res = load_records(p, skip_invalid=True)
    assert res.records[0].question == "Multi-line\nquestion?"
    assert [(x.line, x.field) for x in res.invalid] == [(4, None), (5, "Correct Answers")]


@pytest.mark.parametrize("chosen, rejected, field, reason", [
    ("Human: no leading blank line\n\nAssistant: a", None, "chosen", "does not start with"),
    (hh(("Human", "q"), ("Assistant", "a"), ("Human", "more")), None, "chosen", "does not end with an Assistant"),
    (hh(("Human", ""), ("Assistant", "a")), None, "chosen", "turn 1 (user) is empty"),
    (hh(("Human", "q"), ("Assistant", "a")), hh(("Human", "other"), ("Assistant", "b")), "rejected",
     "differs from 'chosen'"),
    ("just text", None, "chosen", "does not start with"),
])
def test_hh_rlhf_malformed_dialogues(tmp_path, chosen, rejected, field, reason):
    rejected = rejected or hh(("Human", "q"), ("Assistant", "b"))
    p = jsonl(tmp_path / "hh.jsonl", [{"chosen": chosen, "rejected": rejected}])
    with pytest.raises(DataError) as e:
        load_records(p, kind="hh_rlhf")
    assert (e.value.line, e.value.field) == (1, field) and reason in str(e.value)


@pytest.mark.parametrize("row, field", [
    ({"prompt": "p", "response": "r", "is_safe": "maybe"}, "is_safe"),
    ({"prompt": "p", "response": 5, "is_safe": True}, "response"),
])
def test_beavertails_bad_fields(tmp_path, row, field):
    with pytest.raises(DataError) as e:
        load_records(jsonl(tmp_path / "b.jsonl", [row]), kind="beavertails")
    assert e.value.field == field


@pytest.mark.parametrize("change, field", [
    ({"safer_response_id": 2}, "safer_response_id"),
    ({"better_response_id": True}, "better_response_id"),
    ({"prompt": ""}, "prompt"),
])
def test_pku_bad_fields(tmp_path, change, field):
    row = {"prompt": "p", "response_0": "a", "response_1": "b", "safer_response_id": 0,
           "better_response_id": 1} | change
    with pytest.raises(DataError) as e:
        load_records(jsonl(tmp_path / "pku.jsonl", [row]), kind="pku_saferlhf")
    assert e.value.field == field


def test_alpaca_eval_gpt4_jsonl_gz_ties_and_unlabelled_are_kept_and_counted(tmp_path):
    base = {"instruction": "Q?", "output_1": "one", "output_2": "two", "generator_1": "text_davinci_003",
            "generator_2": "m", "annotator": "alpaca_eval_gpt4", "dataset": "koala"}
    rows = [base | {"preference": 2}, base | {"preference": "1.0"}, base | {"preference": 0},
            base | {"preference": 1.5}, base | {"preference": None}]
    p = tmp_path / "annotations.jsonl.gz"
    p.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    res = load_records(p)
    assert (res.kind, len(res), res.n_invalid) == ("alpaca_eval_annotations", 5, 0)
    labels = [r.meta["label"] for r in res.records]
    assert labels == ["output_2", "output_1", "tie", "tie", "none"]
    assert res.records[0].chosen == "two" and res.records[1].chosen == "one"
    assert res.records[4].meta["preference"] is None and res.records[4].meta["generator_2"] == "m"
    (note,) = res.notes
    assert (note.line, note.field) == (5, "preference") and "no valid preference" in note.reason


def pandalm_row(**change):
    return {"idx": 0, "motivation_app": "Gmail", "cmp_key": "a_b", "instruction": "Fix the typo.",
            "input": "Helo", "response1": "Hello", "response2": "Help", "annotator1": 1, "annotator2": 1,
            "annotator3": 2} | change


def test_pandalm_majority_vote_input_and_boolean_responses(tmp_path):
    p = tmp_path / "testset.json"
    p.write_text(json.dumps([
        pandalm_row(),
        pandalm_row(annotator1=2, annotator2=0, annotator3=2, response2=True),
        pandalm_row(annotator1=0, annotator2=0, annotator3=1, input=""),
        pandalm_row(annotator1=0, annotator2=1, annotator3=2, instruction=" "),
    ], indent=1))
    res = load_records(p)
    assert (res.kind, len(res), res.n_invalid) == ("pandalm", 4, 0)
    first, second, tie, split_vote = res.records
    assert first.messages == [{"role": "user", "content": "Fix the typo.\n\nHelo"}]
    assert (first.chosen, first.rejected, first.meta["majority"], first.meta["agreement"]) == ("Hello", "Help", 1, 2)
    assert first.meta["annotators"] == [1, 1, 2] and first.meta["cmp_key"] == "a_b" and first.axis == "helpful"
    assert (second.chosen, second.rejected, second.meta["label"]) == ("True", "Hello", "response2")
    assert tie.meta["tie"] and tie.prompt == "Fix the typo."
    assert split_vote.meta["tie"] and split_vote.meta["majority"] == 0 and split_vote.prompt == "Helo"
    assert sorted((n.field, n.reason) for n in res.notes) == [
        ("instruction", "(item 3) blank instruction; the input alone is the prompt (kept)"),
        ("response2", "(item 1) JSON boolean true read as the text 'True' (kept)")]


@pytest.mark.parametrize("change, field", [
    ({"annotator2": 3}, "annotator2"),
    ({"annotator3": "x"}, "annotator3"),
    ({"response1": 5}, "response1"),
    ({"instruction": " ", "input": ""}, "instruction"),
    ({"response2": None}, "response2"),
])
def test_pandalm_bad_fields(tmp_path, change, field):
    with pytest.raises(DataError) as e:
        load_records(jsonl(tmp_path / "p.jsonl", [pandalm_row(), pandalm_row(**change)]), kind="pandalm")
    assert (e.value.field, e.value.line) == (field, 2)


@pytest.mark.parametrize("preference", [3.0, "high"])
def test_annotations_bad_preference(tmp_path, preference):
    row = {"instruction": "q", "output_1": "a", "output_2": "b", "preference": preference}
    with pytest.raises(DataError) as e:
        load_records(jsonl(tmp_path / "ann.jsonl", [row]), kind="alpaca_eval_annotations")
    assert e.value.field == "preference"


@pytest.mark.parametrize("row, field", [
    ({"messages": [{"role": "assistant", "content": "a"}], "response": "r"}, "messages"),
    ({"messages": [{"role": "bot", "content": "a"}], "response": "r"}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": ""}], "response": "r"}, "messages[0].content"),
    ({"messages": [{"role": "user"}], "response": "r"}, "messages[0]"),
    ({"messages": [], "response": "r"}, "messages"),
    ({"messages": [{"role": "user", "content": "q"}], "response": "r", "respnse": "typo"}, "respnse"),
    ({"messages": [{"role": "user", "content": "q"}], "response": "r", "meta": []}, "meta"),
])
def test_own_sft_format_is_strict(tmp_path, row, field):
    with pytest.raises(DataError) as e:
        load_records(jsonl(tmp_path / "s.jsonl", [row]), kind="sft")
    assert e.value.field == field


def test_qa_answers_must_be_non_empty_strings(tmp_path):
    row = {"question": "q", "best_answer": "b", "correct_answers": ["b", ""], "incorrect_answers": ["x"]}
    with pytest.raises(DataError) as e:
        load_records(jsonl(tmp_path / "q.jsonl", [row]))
    assert e.value.field == "correct_answers"


def test_source_level_errors(tmp_path):
    with pytest.raises(AxialError, match="no such file"):
        load_records(tmp_path / "missing.jsonl")
    with pytest.raises(AxialError, match="is a folder"):
        load_records(tmp_path)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(AxialError, match="unsupported file type"):
        load_records(tmp_path / "x.txt")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="contains no records"):
        load_records(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="cannot tell the dataset kind"):
        load_records(jsonl(tmp_path / "odd.jsonl", [{"foo": 1}]))
    with pytest.raises(AxialError, match="unknown kind 'nope'"):
        load_records(jsonl(tmp_path / "a.jsonl", [GOOD]), kind="nope")
    (tmp_path / "latin1.jsonl").write_bytes('{"instruction": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_records(tmp_path / "latin1.jsonl")
    with pytest.raises(AxialError, match="split 'dev'"):
        load_records(jsonl(tmp_path / "a.jsonl", [GOOD]), split="dev")


def test_limit_stops_early_and_says_so(tmp_path):
    p = jsonl(tmp_path / "a.jsonl", [GOOD] * 5)
    res = load_records(p, limit=2)
    assert len(res) == 2 and res.stopped_at_limit == 2 and "stopped at limit=2" in res.summary()
    assert load_records(p, limit=5).stopped_at_limit is None


def test_split_partitions_records(tmp_path):
    rows = [{"instruction": f"Instruction number {i}", "output": "o"} for i in range(200)]
    p = jsonl(tmp_path / "a.jsonl", rows)
    train, test, everything = (load_records(p, split=s) for s in ("train", "test", "all"))
    train_ids = {r.id for r in train}
    test_ids = {r.id for r in test}
    assert not train_ids & test_ids and train_ids | test_ids == {r.id for r in everything}
    assert train.n_other_split == len(test) and test.n_other_split == len(train)
    assert 60 < len(test) < 140
    assert "other split" in test.summary()


def test_axis_override(tmp_path):
    assert load_records(jsonl(tmp_path / "a.jsonl", [GOOD]), axis="creative").records[0].axis == "creative"


# ---- hub ---------------------------------------------------------------------------------------------------

def test_hub_ids_go_through_datasets(monkeypatch):
    import datasets

    calls = []

    def fake_load(repo, name=None, split=None):
        calls.append((repo, name, split))
        return datasets.Dataset.from_list([{"prompt": "p", "response": "r", "is_safe": True},
                                           {"prompt": "", "response": "r", "is_safe": True}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    res = load_records("PKU-Alignment/BeaverTails:30k_test", skip_invalid=True)
    assert res.kind == "beavertails" and len(res) == 1
    assert (res.invalid[0].path, res.invalid[0].line) == ("PKU-Alignment/BeaverTails:30k_test", 2)
    load_records("owner/name:cfg:test", skip_invalid=True)
    assert calls == [("PKU-Alignment/BeaverTails", None, "30k_test"), ("owner/name", "cfg", "test")]


def test_hub_failures_become_clear_errors(monkeypatch):
    import datasets

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(AxialError, match="could not load 'owner/name:train' from the Hugging Face hub"):
        load_records("owner/name:train")

    def two_splits(*a, **k):
        return datasets.DatasetDict({"train": datasets.Dataset.from_list([GOOD]),
                                     "test": datasets.Dataset.from_list([GOOD])})

    monkeypatch.setattr(datasets, "load_dataset", two_splits)
    with pytest.raises(AxialError, match=r"has splits \['train', 'test'\]"):
        load_records("owner/name")


def test_truthfulqa_hub_layout_is_detected(tmp_path):
    row = {"type": "Adversarial", "category": "Health", "question": "Q?", "best_answer": "b",
           "best_incorrect_answer": "w", "correct_answers": ["b", "c"], "incorrect_answers": ["w"],
           "source": "https://x"}
    res = load_records(jsonl(tmp_path / "tqa.jsonl", [row]))
    (rec,) = res.records
    assert res.kind == "truthfulqa_hf" and rec.correct_answers == ["b", "c"] and rec.axis == "honest"
    assert rec.meta == {"reference": "https://x", "best_incorrect_answer": "w"}


def test_json_file_with_a_single_object(tmp_path):
    p = tmp_path / "one.json"
    p.write_text(json.dumps({"instruction": "i", "output": "o"}, indent=2))
    assert len(load_records(p)) == 1
    p.write_text(json.dumps({"data": [{"instruction": "i", "output": "o"}]}, indent=2))
    with pytest.raises(DataError, match=r"cannot tell the dataset kind from fields \['data'\]"):
        load_records(p)
    jsonl(p, [GOOD, GOOD])  # JSON Lines under a .json name
    assert len(load_records(p)) == 2


def test_notes_only_for_kept_records(tmp_path):
    rows = [{"instruction": f"task {i}", "output": ""} for i in range(40)]
    p = jsonl(tmp_path / "a.jsonl", rows)
    for split in ("train", "test", "all"):
        res = load_records(p, split=split)
        assert len(res.notes) == len(res) and all(n.field == "output" for n in res.notes)


def test_jsonl_with_raw_unicode_line_separators(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_text(json.dumps({"instruction": "a\u2028b\x85c", "output": "o"}, ensure_ascii=False) + "\r\n",
                 encoding="utf-8")
    (rec,) = load_records(p).records
    assert rec.prompt == "a\u2028b\x85c"


def test_csv_row_of_empty_cells_is_an_error_not_skipped(tmp_path):
    p = tqa_csv(tmp_path / "t.csv", [["", "", "", "", "", "", ""]])
    with pytest.raises(DataError) as e:
        load_records(p, kind="truthfulqa")
    assert (e.value.line, e.value.field) == (2, "Question")

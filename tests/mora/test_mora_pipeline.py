from axial.mora.pipeline import demo_config, round_robin


def test_round_robin_interleaves_axes(fakes):
    prompts = fakes.make_prompts([("a", "1"), ("a", "2"), ("a", "3"), ("b", "4"), ("c", "5"), ("c", "6")])
    assert [p.messages[0]["content"] for p in round_robin(prompts)] == ["1", "4", "5", "2", "6", "3"]
    assert round_robin([]) == []


def test_demo_config_is_small_and_valid(tmp_path):
    cfg = demo_config(tmp_path)
    assert cfg.k >= 2 and cfg.max_new_tokens <= 64
    assert [p.split("=")[0] for p in cfg.prompts] == cfg.axis_names()

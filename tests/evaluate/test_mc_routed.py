import pytest
import torch

from axial.evaluate.truthfulqa_mc import MCScorer
from axial.mixture import GateConfig, Mixture, Routed
from axial.mixture.testing import write_random_adapter
from axial.mocae.router import MoCaERouter
from axial.testing import tiny_llama


@pytest.fixture()
def routed(tmp_path):
    model, tok = tiny_llama()
    dirs = [str(write_random_adapter(lambda: tiny_llama()[0], tmp_path / a, seed=i, axis=a, r=4,
                                     target_modules=["q_proj", "v_proj"])) for i, a in enumerate(["a", "b"])]
    mixture = Mixture.attach(model, dirs)
    torch.manual_seed(0)
    router = MoCaERouter(model.config.hidden_size, ["a", "b"], model.config.num_hidden_layers,
                         granularity="sequence")
    for p in router.parameters():  # a soft router, so that what it pools over changes the weights
        torch.nn.init.normal_(p, std=0.1)
    router.bind(model)
    mixture.use(Routed(router, GateConfig()))
    return model, tok, router


def test_sequence_routed_variant_scores_with_prompt_pooling(routed):
    model, tok, router = routed
    scorer = MCScorer(model, tok, primer="Q: a?\nA: b.", router=router)
    answers = ["yes.", "no, never.", "maybe so."]
    got = scorer.score("is it?", answers)  # the primer-cache path used to fail on the batch-size mismatch
    assert [n for _, n in got] == [len(c) for c in scorer.continuation_ids("Q: a?\nA: b.\n\nQ: is it?\nA:",
                                                                          answers)[1]]
    # Routing pooled over the whole prompt+answer (the attention mask) would give other numbers: the scorer must
    # pool over the prompt only.
    ctx, conts = scorer.continuation_ids("Q: a?\nA: b.\n\nQ: is it?\nA:", answers)
    with torch.no_grad():
        logits = model(torch.tensor([ctx + conts[1]])).logits[0].float()
    full_pool = float(torch.log_softmax(logits, -1)[torch.arange(len(ctx) - 1, len(ctx) + len(conts[1]) - 1),
                                                    torch.tensor(conts[1])].sum())
    assert got[1][0] != pytest.approx(full_pool, abs=1e-6)

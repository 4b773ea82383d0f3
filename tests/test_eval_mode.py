"""Sampling, decoding and evaluating run in eval mode and leave a model in the mode they found."""

import numpy as np
import pytest

from rnnkit.apps.lm.model import LanguageModel
from rnnkit.apps.seq2seq.model import Seq2Seq, Seq2SeqConfig
from rnnkit.data.text import Vocabulary
from rnnkit.network import NetworkConfig, SequenceNetwork


def modes(model) -> list[bool]:
    return [module.training for module in model.modules()]


def test_evaluating_restores_every_submodule_even_after_an_exception():
    network = SequenceNetwork(NetworkConfig(3, 2, hidden_size=4, dropout=0.5), rng=0)
    network.train()
    network.dropout.eval()  # a mixed state comes back as it was
    before = modes(network)
    with network.evaluating() as inside:
        assert inside is network and not any(modes(network))
    assert modes(network) == before
    with pytest.raises(RuntimeError), network.evaluating():
        raise RuntimeError("interrupted")
    assert modes(network) == before


def language_model() -> LanguageModel:
    vocabulary = Vocabulary.from_text("hello world\n")
    config = NetworkConfig(len(vocabulary), len(vocabulary), hidden_size=8, input_kind="one_hot", dropout=0.3)
    return LanguageModel(SequenceNetwork(config, rng=0), vocabulary)


def seq2seq() -> Seq2Seq:
    return Seq2Seq(Seq2SeqConfig(vocabulary_size=9, hidden_size=6, embedding_size=4), rng=0)


CALLS = {  # issue 19, defect 8: each left a model in eval mode
    "generate": (language_model, lambda lm: lm.generate(12, prime="he"), lambda lm: lm.network),
    "loss": (language_model, lambda lm: lm.loss("hello world\nhello"), lambda lm: lm.network),
    "decode": (seq2seq, lambda model: model.decode(np.array([3, 4, 5]), max_length=4, beam=2), lambda m: m),
    "translate_batch": (seq2seq, lambda model: model.translate_batch(np.array([[3, 4], [5, 0]]), max_length=4),
                        lambda m: m),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("training", [True, False])
def test_leaves_the_model_in_the_mode_it_found(call, training):
    build, run, module_of = CALLS[call]
    model = build()
    module = module_of(model)
    module.train(training)
    run(model)
    assert modes(module) == [training] * len(modes(module))
    module.train(True)
    first = run(model)
    module.eval()
    assert run(model) == first  # in eval mode either way: the same result

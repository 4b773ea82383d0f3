"""Every `rng=` takes a numpy Generator or an int seed (through init.as_generator), and a seed
gives what a Generator of that seed gives."""

import numpy as np
import pytest

from rnnkit import init
from rnnkit.apps.caption.model import Captioner, CaptionerConfig
from rnnkit.apps.classify.model import ClassifierConfig, SequenceClassifier
from rnnkit.apps.lm.model import LanguageModel
from rnnkit.apps.seq2seq.model import Seq2Seq, Seq2SeqConfig
from rnnkit.cells.gru import GRUCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.data.synthetic import adding_problem
from rnnkit.data.text import Vocabulary
from rnnkit.layers import Dropout, Embedding, Linear
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.recurrent import GRU, LSTM, RNN

TOKENS = NetworkConfig(7, 7, hidden_size=5, input_kind="embedding", embedding_size=3)
BUILDERS = {
    "RNN": lambda rng: RNN(3, 4, rng=rng),
    "LSTM": lambda rng: LSTM(3, 4, num_layers=2, rng=rng),
    "GRU": lambda rng: GRU(3, 4, rng=rng),
    "LSTMCell": lambda rng: LSTMCell(3, 4, bias=True, dtype=np.float32, rng=rng),
    "GRUCell": lambda rng: GRUCell(3, 4, bias=True, dtype=np.float32, rng=rng),
    "Linear": lambda rng: Linear(3, 4, rng=rng),
    "Embedding": lambda rng: Embedding(5, 2, rng=rng),
    "SequenceNetwork": lambda rng: SequenceNetwork(TOKENS, rng=rng),
    "Captioner": lambda rng: Captioner(CaptionerConfig(6, TOKENS), rng=rng),
    "Seq2Seq": lambda rng: Seq2Seq(Seq2SeqConfig(vocabulary_size=7, hidden_size=4), rng=rng),
    "SequenceClassifier": lambda rng: SequenceClassifier(ClassifierConfig(NetworkConfig(
        7, 3, hidden_size=4, input_kind="embedding", embedding_size=3)), rng=rng),
}


def values(built) -> list[np.ndarray]:
    if hasattr(built, "params"):  # a cell
        return [p.value for p in built.params().values()]
    return [p.value for p in built.parameters()]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_seed_builds_what_a_generator_of_that_seed_builds(name):
    build = BUILDERS[name]
    for seeded, generated in zip(values(build(3)), values(build(np.random.default_rng(3)))):
        np.testing.assert_array_equal(seeded, generated)


def test_initialisers_dropout_and_data_take_a_seed():
    for initialiser in (lambda rng: init.uniform_fan(rng, (3, 2), 2), lambda rng: init.glorot_uniform(rng, (3, 2)),
                        lambda rng: init.orthogonal(rng, (3, 2))):
        np.testing.assert_array_equal(initialiser(5), initialiser(np.random.default_rng(5)))
    x = np.ones((4, 6), dtype=np.float32)
    np.testing.assert_array_equal(Dropout(0.5, rng=2).forward(x)[0],
                                  Dropout(0.5, rng=np.random.default_rng(2)).forward(x)[0])
    for seeded, generated in zip(adding_problem(4, 3, 6), adding_problem(np.random.default_rng(4), 3, 6)):
        np.testing.assert_array_equal(seeded, generated)


def test_generate_takes_a_seed():  # issue 19, defect 10: rng=1 raised AttributeError
    vocabulary = Vocabulary.from_text("abc d\n")
    model = LanguageModel(SequenceNetwork(NetworkConfig(len(vocabulary), len(vocabulary), hidden_size=6,
                                                        input_kind="one_hot"), rng=0), vocabulary)
    text = model.generate(30, rng=1)
    assert text == model.generate(30, rng=np.random.default_rng(1)) and len(text) == 30
    assert model.generate(30) == model.generate(30, rng=0)  # no rng: seed 0, reproducible
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator or an integer seed, got str"):
        model.generate(5, rng="1")

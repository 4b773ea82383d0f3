"""The captioner: gradients through decoder and bridge by finite differences; the CLI end to end."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error

from rnnkit.apps.caption.model import Captioner, CaptionerConfig
from rnnkit.cli import main
from rnnkit.conditioned import teacher_forcing
from rnnkit.data.batches import Conditioned
from rnnkit.losses import softmax_cross_entropy
from rnnkit.network import NetworkConfig


@pytest.mark.parametrize("cell,layers", [("lstm", 2), ("gru", 1), ("rnn", 2)])
def test_teacher_forcing_gradients_through_decoder_and_bridge(cell, layers):
    rng = np.random.default_rng(0)
    decoder = NetworkConfig(input_size=6, output_size=6, cell=cell, hidden_size=4, num_layers=layers,
                            input_kind="embedding", embedding_size=3)
    model = Captioner(CaptionerConfig(5, decoder), dtype=np.float64, rng=1)
    images = rng.standard_normal((3, 5))
    inputs, targets, mask = teacher_forcing([[3, 4], [5], [3, 3, 4]])
    batch = Conditioned(images, inputs.T)

    def loss() -> float:
        return softmax_cross_entropy(model.forward(batch)[0], targets.T, mask.T)[0]

    outputs, _, cache = model.forward(batch)
    _, d_outputs = softmax_cross_entropy(outputs, targets.T, mask.T)
    model.zero_grad()
    model.backward(d_outputs, cache)
    for name, param in model.named_parameters():
        error = relative_error(param.grad, numeric_gradient(loss, param.value))
        assert error < 1e-6, (name, error)
    assert np.abs(model.bridge.weight.grad).sum() > 0  # the image really is trained through


def test_caption_cli_trains_and_describes(tmp_path, capsys):
    assert main(["caption", "train", "--epochs", "3", "--hidden", "16", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"caption exact match [\d.]+%, digit accuracy [\d.]+%", printed)
    assert main(["caption", "describe", str(tmp_path / "last.safetensors"), "--index", "0", "7", "--beam", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    pattern = r"image \d+: '.*' \(truth: 'a \w+ handwritten \w+'\)"
    assert len(lines) == 2 and all(re.match(pattern, line) for line in lines)


def test_caption_bad_input(tmp_path, capsys):
    assert main(["caption", "describe", str(tmp_path / "none.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["caption", "describe", str(tmp_path / "x"), "--beam", "0"])
    assert exit_info.value.code == 2

"""The LSTM's chrono initialisation (Tallec & Ollivier 2018): b_f = log U(1, T_max - 1) per unit,
b_i = -b_f, the rest of PyTorch's draw untouched; the variants' rules; NetworkConfig and files."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.init import chrono_bias
from rnnkit.network import NetworkConfig, SequenceNetwork
from rnnkit.optim import Adam
from rnnkit.resume import TrainState, restore_training, save_training

H = 6


def test_chrono_sets_the_forget_and_input_biases_after_the_cells_other_draws():
    plain = rnnkit.LSTM(3, H, 2, rng=5).state_dict()
    chrono = rnnkit.LSTM(3, H, 2, chrono_max_lag=40, rng=5).state_dict()
    assert plain.keys() == chrono.keys()
    for layer in ("l0", "l1"):
        ih, hh = (chrono[f"bias_{k}_{layer}"].reshape(4, H) for k in ("ih", "hh"))  # blocks i, f, g, o
        forget = ih[1]
        assert np.all((forget >= 0) & (forget <= np.log(39)))
        np.testing.assert_array_equal(ih[0], -forget)
        np.testing.assert_array_equal(hh[:2], 0.0)
    # The first cell's own draws come before its chrono draw (later cells' draws follow it).
    np.testing.assert_array_equal(chrono["bias_ih_l0"].reshape(4, H)[2:], plain["bias_ih_l0"].reshape(4, H)[2:])
    np.testing.assert_array_equal(chrono["bias_hh_l0"].reshape(4, H)[2:], plain["bias_hh_l0"].reshape(4, H)[2:])
    np.testing.assert_array_equal(chrono["weight_ih_l0"], plain["weight_ih_l0"])
    np.testing.assert_array_equal(chrono["weight_hh_l0"], plain["weight_hh_l0"])


def test_chrono_bias_is_the_log_of_a_uniform_draw_on_1_to_tmax_minus_1():
    u = np.exp(chrono_bias(np.random.default_rng(0), 20_000, 50, np.float64))
    assert 1.0 <= u.min() < 1.05 and 48.95 < u.max() <= 49.0
    counts, _ = np.histogram(u, bins=8, range=(1, 49))
    assert np.all(np.abs(counts / 2_500 - 1) < 0.1)  # flat in u, not in log u
    with pytest.raises(ValueError, match=">= 3"):
        chrono_bias(0, 4, 2)


def test_the_gates_start_where_chrono_puts_them():
    layer = rnnkit.LSTM(2, 500, chrono_max_lag=100, dtype=np.float64, rng=1)
    f = layer.forward(np.zeros((1, 1, 2)))[2].internals()["l0"]["f"][0, 0]
    u = f / (1 - f)  # sigmoid(log u) = u / (1 + u): a memory of about u steps
    assert 1 <= u.min() and u.max() <= 99 and abs(u.mean() - 50) < 3


def test_cifg_gets_it_on_the_input_gate_nig_on_the_forget_gate_only():
    cifg = rnnkit.LSTM(2, H, variant="CIFG", chrono_max_lag=30, rng=3).bias_ih_l0.value.reshape(3, H)  # i, g, o
    assert np.all(-cifg[0] >= 0) and np.all(-cifg[0] <= np.log(29))  # 1 - i = sigma(-z_i) has bias log u
    nig = rnnkit.LSTM(2, H, variant="NIG", chrono_max_lag=30, rng=3).bias_ih_l0.value.reshape(3, H)  # f, g, o
    assert np.all((nig[0] >= 0) & (nig[0] <= np.log(29)))


@pytest.mark.parametrize("options, says", [
    ({"variant": "NFG"}, "not NFG"),
    ({"bias": False}, "bias=True"),
    ({"forget_bias": 1.0}, "forget_bias=0"),
])
def test_chrono_with_nowhere_to_go_is_refused(options, says):
    with pytest.raises(ValueError, match=says):
        rnnkit.LSTM(2, H, chrono_max_lag=10, **options)
    with pytest.raises(ValueError, match=">= 3"):
        rnnkit.LSTM(2, H, chrono_max_lag=2)


def test_network_config_carries_it_through_a_file_and_old_configurations_load(tmp_path):
    config = NetworkConfig(input_size=3, output_size=2, hidden_size=H, chrono_max_lag=25)
    old = config.to_dict()
    del old["chrono_max_lag"]  # a checkpoint written before the option
    assert NetworkConfig.from_dict(old).chrono_max_lag == 0
    network = SequenceNetwork(config, rng=2)
    save_checkpoint(tmp_path / "net", network.state_dict(), {"model": config.to_dict()})
    tensors, metadata = load_checkpoint(tmp_path / "net")
    loaded = SequenceNetwork(NetworkConfig.from_dict(metadata["model"]), rng=9)
    assert loaded.config == config
    loaded.load_state_dict(tensors)
    np.testing.assert_array_equal(loaded.rnn.bias_ih_l0.value, network.rnn.bias_ih_l0.value)
    with pytest.raises(ValueError, match="GRU has none"):
        NetworkConfig(input_size=3, output_size=2, cell="gru", chrono_max_lag=25)


def test_a_training_checkpoint_written_before_the_option_resumes_and_a_changed_one_is_refused(tmp_path):
    model = SequenceNetwork(NetworkConfig(input_size=3, output_size=2, hidden_size=H), rng=0)
    optimizer = Adam(model.parameters(), lr=0.01)
    save_training(tmp_path / "new", model, optimizer, None, TrainState(step=3), None)
    tensors, info = load_checkpoint(tmp_path / "new")
    del info["model"]["chrono_max_lag"]  # as written before the option existed
    save_checkpoint(tmp_path / "old", tensors, info)
    assert restore_training(tmp_path / "old", model, optimizer, None)[0].step == 3
    info["model"]["hidden_size"] = H + 1
    save_checkpoint(tmp_path / "other", tensors, info)
    with pytest.raises(ValueError, match="hidden_size: checkpoint has 7, expected 6"):
        restore_training(tmp_path / "other", model, optimizer, None)

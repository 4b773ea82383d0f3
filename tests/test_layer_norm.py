"""Layer-normalised cells (Ba, Kiros & Hinton 2016): hand-derived BPTT against finite
differences (float64), the equations re-written in torch with torch's own layer_norm as the
oracle, the normalisation itself, parameter names, and the combinations that are refused.
(Padded batches of normalised cells are in test_masking.py's list of layers.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from clirun import run_cli
from gradcheck import check_layer_gradients
from torch_reference import H, I, compare

import rnnkit
from rnnkit import kernels
from rnnkit.apps.lm.model import LanguageModel
from rnnkit.checkpoint import load_checkpoint
from rnnkit.interop.onnx import check_exportable
from rnnkit.interop.torch import torch_modules
from rnnkit.network import NetworkConfig, SequenceNetwork

TOLERANCE = 1e-6
SHAPES = [(1, False), (2, True)]  # (num_layers, bidirectional)
LSTM_CONFIGS = [(None, False), (None, True), ("V", None), ("CIFG", None), ("FGR", None), ("NOAF", None),
                ("NIG", False)]


def assert_gradients_match(layer, steps=3, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, batch, layer.input_size))
    errors = check_layer_gradients(layer, x, rng)
    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, f"{worst}: relative error {errors[worst]:.2e}"
    assert any(name.startswith("layer_norm_") for name in errors)


def randomise_norms(layer, seed=5):
    """Gains and shifts away from their 1 / 0 start, so a wrong gain term cannot hide."""
    rng = np.random.default_rng(seed)
    for name, p in layer.named_parameters():
        if name.startswith("layer_norm_"):
            p.value[...] = rng.uniform(0.5, 1.5, p.shape) if "_weight" in name else rng.normal(0, 0.3, p.shape)
    return layer


def shape_id(shape):
    return f"{shape[0]}layer" + ("-bi" if shape[1] else "")


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("variant,peephole", LSTM_CONFIGS,
                         ids=[f"{v or 'standard'}-{'peephole' if p else 'nopeep'}" for v, p in LSTM_CONFIGS])
def test_lstm_gradients(variant, peephole, shape):
    layer = rnnkit.LSTM(2, 3, shape[0], bidirectional=shape[1], peephole=peephole, variant=variant,
                        layer_norm=True, dtype=np.float64, rng=2)
    assert_gradients_match(randomise_norms(layer))


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("cls", [rnnkit.GRU, rnnkit.RNN], ids=["gru", "rnn"])
def test_gru_and_elman_gradients(cls, shape):
    layer = cls(3, 4, shape[0], bidirectional=shape[1], layer_norm=True, dtype=np.float64, rng=3)
    assert_gradients_match(randomise_norms(layer))


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU])
def test_gradients_without_bias_batch_first(cls):
    layer = cls(3, 4, 2, bias=False, batch_first=True, layer_norm=True, dtype=np.float64, rng=4)
    assert "layer_norm_cell_bias_l0" not in dict(layer.named_parameters())  # bias=False: no shifts
    rng = np.random.default_rng(1)
    errors = check_layer_gradients(randomise_norms(layer), rng.standard_normal((2, 3, 3)), rng)
    assert max(errors.values()) < TOLERANCE


# ------------------------------------------------------------------- torch as the oracle
def ln(v, gain, shift=None):
    return F.layer_norm(v, (v.shape[-1],), gain, shift, eps=1e-5)


def reference_ln_lstm(p, x, h, c, peephole):
    """Ba et al.'s layer-normalised LSTM (their eq. 20-22), with optional peepholes."""
    peep = dict(zip("ifo", p["weight_peephole"])) if peephole else {}
    outputs = []
    for t in range(x.shape[0]):
        pre = (ln(x[t] @ p["weight_ih"].T, p["layer_norm_ih_weight"]) + p["bias_ih"]
               + ln(h @ p["weight_hh"].T, p["layer_norm_hh_weight"]) + p["bias_hh"])
        pi, pf, pg, po = pre.split(H, dim=1)
        i = torch.sigmoid(pi + peep.get("i", 0) * c)
        f = torch.sigmoid(pf + peep.get("f", 0) * c)
        c = f * c + i * torch.tanh(pg)
        o = torch.sigmoid(po + peep.get("o", 0) * c)
        h = o * torch.tanh(ln(c, p["layer_norm_cell_weight"], p["layer_norm_cell_bias"]))
        outputs.append(h)
    return torch.stack(outputs), (h, c)


def reference_ln_gru(p, x, h):
    """PyTorch's GRU with both projections normalised: n = tanh(a_n + r * (LN(W_hh h)_n + b_hn))."""
    outputs = []
    for t in range(x.shape[0]):
        a = ln(x[t] @ p["weight_ih"].T, p["layer_norm_ih_weight"]) + p["bias_ih"]
        q = ln(h @ p["weight_hh"].T, p["layer_norm_hh_weight"]) + p["bias_hh"]
        (a_r, a_z, a_n), (q_r, q_z, q_n) = a.split(H, dim=1), q.split(H, dim=1)
        r, z = torch.sigmoid(a_r + q_r), torch.sigmoid(a_z + q_z)
        n = torch.tanh(a_n + r * q_n)
        h = (1 - z) * n + z * h
        outputs.append(h)
    return torch.stack(outputs), (h,)


@pytest.mark.parametrize("peephole", [False, True], ids=["standard", "peephole"])
def test_lstm_matches_ba_et_al_in_torch(peephole):
    layer = randomise_norms(rnnkit.LSTM(I, H, peephole=peephole, layer_norm=True, dtype=np.float64, rng=1))
    assert compare(layer, lambda p, x, h, c: reference_ln_lstm(p, x, h, c, peephole), seed=3) < 1e-10


def test_gru_matches_its_equations_in_torch():
    layer = randomise_norms(rnnkit.GRU(I, H, layer_norm=True, dtype=np.float64, rng=2))
    assert compare(layer, reference_ln_gru, seed=4) < 1e-10


# --------------------------------------------------------------------- the normalisation
def standardised(v):
    return (v - v.mean(axis=-1, keepdims=True)) / np.sqrt(v.var(axis=-1, keepdims=True) + 1e-5)


def test_normalised_preactivations_have_zero_mean_and_unit_variance():
    rng = np.random.default_rng(6)
    layer = rnnkit.LSTM(5, 6, layer_norm=True, dtype=np.float64, rng=3)
    x = rng.standard_normal((4, 3, 5)) * 7 + 2
    state0 = tuple(rng.standard_normal((1, 3, 6)) for _ in range(2))  # W_hh h_0 = 0 would have no variance
    _, _, cache = layer.forward(x, state0)
    cell, kept = layer._cells[0][0], cache.cells[0][0]
    v_hat = {"ih": kept.ln_ih[0], "hh": kept.ln_hh[0], "cell": kept.ln_cell[0]}
    for name, value in v_hat.items():  # before gain and shift: zero mean, unit variance per row
        np.testing.assert_allclose(value.mean(axis=-1), 0.0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(value.var(axis=-1), 1.0, atol=1e-3, err_msg=name)
    # ... and they are the projections themselves, standardised over all G*H features at once.
    np.testing.assert_allclose(v_hat["ih"], standardised(x @ cell.weight_ih.value.T), atol=1e-12)
    np.testing.assert_allclose(v_hat["hh"], standardised(kept.h[:-1] @ cell.weight_hh.value.T), atol=1e-12)
    np.testing.assert_allclose(v_hat["cell"], standardised(kept.c[1:]), atol=1e-12)


def test_outputs_do_not_depend_on_the_scale_of_the_weights():
    """What normalising buys: W_ih and W_hh scaled by any factor give the same outputs (up to
    the eps in the variance, made negligible here by starting from large weights)."""
    rng = np.random.default_rng(7)
    layer = rnnkit.GRU(3, 4, layer_norm=True, dtype=np.float64, rng=4)
    x = rng.standard_normal((5, 2, 3))
    layer.weight_ih_l0.value *= 100.0
    layer.weight_hh_l0.value *= 100.0
    before, _, _ = layer.forward(x)
    layer.weight_ih_l0.value *= 30.0
    layer.weight_hh_l0.value *= 0.5
    after, _, _ = layer.forward(x)
    np.testing.assert_allclose(after, before, atol=1e-6)


def test_parameter_names_shapes_and_initial_values():
    layer = rnnkit.LSTM(3, 4, 1, bidirectional=True, variant="CIFG", layer_norm=True, rng=0)
    params = dict(layer.named_parameters())
    assert params["layer_norm_ih_weight_l0"].shape == (3 * 4,)  # CIFG: i, g, o blocks
    assert params["layer_norm_hh_weight_l0_reverse"].shape == (3 * 4,)
    assert params["layer_norm_cell_weight_l0"].shape == params["layer_norm_cell_bias_l0"].shape == (4,)
    for name, p in params.items():
        if name.startswith("layer_norm_"):
            np.testing.assert_array_equal(p.value, 1.0 if "_weight" in name else 0.0, err_msg=name)
    gru = dict(rnnkit.GRU(3, 4, layer_norm=True).named_parameters())
    assert sorted(n for n in gru if n.startswith("layer_norm_")) == ["layer_norm_hh_weight_l0",
                                                                    "layer_norm_ih_weight_l0"]
    # Without layer_norm the weights are those of the plain layer: the gains draw no random numbers.
    plain = dict(rnnkit.LSTM(3, 4, bidirectional=True, variant="CIFG", rng=0).named_parameters())
    for name, p in plain.items():
        np.testing.assert_array_equal(p.value, params[name].value)


def test_only_the_normalised_lstm_takes_a_compiled_kernel():
    """The LSTM's variants kernel normalises (tests/test_kernels.py checks it against NumPy);
    the GRU's and the Elman cell's kernels do not, so those run the NumPy loop."""
    lstm = rnnkit.LSTM(3, 4, layer_norm=True)._cells[0][0]
    assert lstm.has_fused_form()
    if kernels.available(np.float32):  # Numba installed
        assert lstm.fused() is kernels.load("lstm_variants")
    for layer in (rnnkit.GRU(3, 4, layer_norm=True), rnnkit.RNN(3, 4, layer_norm=True)):
        assert not layer._cells[0][0].has_fused_form()
        assert layer._cells[0][0].fused() is None


def test_sampling_step_equals_forward():
    rng = np.random.default_rng(8)
    layer = randomise_norms(rnnkit.LSTM(3, 4, 2, layer_norm=True, dtype=np.float64, rng=5))
    x = rng.standard_normal((4, 2, 3))
    y, final, _ = layer.forward(x)
    state = None
    for t in range(4):
        out, state = layer.step(x[t], state)
        np.testing.assert_allclose(out, y[t], atol=1e-12)
    np.testing.assert_allclose(state[1], final[1], atol=1e-12)


# ------------------------------------------------------------------ refusals and the CLI
def test_textbook_gru_is_refused():
    with pytest.raises(ValueError, match="layer_norm needs reset_after=True"):
        rnnkit.GRU(3, 4, reset_after=False, layer_norm=True)
    with pytest.raises(ValueError, match="layer_norm needs the PyTorch GRU"):
        NetworkConfig(input_size=3, output_size=2, cell="gru", reset_after=False, layer_norm=True)


def test_export_is_refused():
    network = SequenceNetwork(NetworkConfig(input_size=3, output_size=2, layer_norm=True))
    with pytest.raises(ValueError, match="layer-normalised network cannot be exported to PyTorch"):
        torch_modules(network)
    with pytest.raises(ValueError, match="ONNX's LSTM/GRU/RNN operators have no layer normalisation"):
        check_exportable(network.rnn)


def test_lm_train_records_the_options_and_every_verb_rebuilds_them(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("the cat sat on the mat. " * 40)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "lm", "train", text, "--layer-norm", "--input-dropout", "0.1",
                           "--recurrent-dropout", "0.2", "--cell", "gru", "--hidden", "8",
                           "--layers", "1", "--embed", "4", "--seq-len", "8", "--batch", "2", "--steps", "4",
                           "--eval-every", "2", "--sample-every", "0", "--out", out)
    assert code == 0, err
    _, info = load_checkpoint(out / "best.safetensors")
    recorded = info["model"]
    assert (recorded["layer_norm"], recorded["input_dropout"], recorded["recurrent_dropout"]) == (True, 0.1, 0.2)
    model = LanguageModel.load(out / "best.safetensors")
    assert model.network.rnn.layer_norm and "rnn.layer_norm_hh_weight_l0" in dict(model.network.named_parameters())
    code, sample, _ = run_cli(capsys, "lm", "sample", out / "best.safetensors", "--length", "10")
    assert code == 0 and len(sample.strip()) > 0
    code, _, err = run_cli(capsys, "export", out / "best.safetensors", "--to", "torch", tmp_path / "m.safetensors")
    assert code == 2 and err.count("\n") == 1 and "layer-normalised" in err

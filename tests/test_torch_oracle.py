"""Cells PyTorch does not have (peepholes, Greff et al.'s variants, the textbook GRU, other Elman
activations), checked against the same equations written independently here with torch
operations; torch autograd is the oracle for the gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_reference import H, I, compare

import rnnkit
from rnnkit.cells.lstm import VARIANTS


def reference_lstm(p, x, h, c, a, variant, peephole):
    """Greff et al.'s equations, one layer, one direction, from the paper's definitions."""
    removed = {"NIG": "i", "NFG": "f", "NOG": "o", "CIFG": "f"}.get(variant)
    blocks = [b for b in "ifgo" if b != removed]
    gates = [b for b in blocks if b != "g"]
    W = dict(zip(blocks, p["weight_ih"].split(H)))
    R = dict(zip(blocks, p["weight_hh"].split(H)))
    bias = dict(zip(blocks, (p["bias_ih"] + p["bias_hh"]).split(H)))
    peep = dict(zip(gates, p["weight_peephole"])) if peephole else {}
    sigma = torch.sigmoid
    phi_in = (lambda v: v) if variant == "NIAF" else torch.tanh
    phi_out = (lambda v: v) if variant == "NOAF" else torch.tanh
    outputs = []
    for t in range(x.shape[0]):
        pre = {b: x[t] @ W[b].T + h @ R[b].T + bias[b] for b in blocks}
        if variant == "FGR":
            recurrent_gates = (a @ p["weight_gate"].T).split(H, dim=1)
            for gate, extra in zip(gates, recurrent_gates):
                pre[gate] = pre[gate] + extra
        i = sigma(pre["i"] + peep.get("i", 0) * c) if "i" in blocks else 1.0
        if "f" in blocks:
            f = sigma(pre["f"] + peep.get("f", 0) * c)
        else:
            f = 1.0 - i if variant == "CIFG" else 1.0
        c = f * c + i * phi_in(pre["g"])
        o = sigma(pre["o"] + peep.get("o", 0) * c) if "o" in blocks else 1.0
        h = o * phi_out(c)
        named = {"i": i, "f": f, "o": o}
        a = torch.cat([named[g] for g in gates], dim=1)
        outputs.append(h)
    # The previous gate activations are state only when FGR feeds them back.
    return torch.stack(outputs), ((h, c, a) if variant == "FGR" else (h, c))


def reference_textbook_gru(p, x, h):
    """Cho et al.: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)."""
    W_r, W_z, W_n = p["weight_ih"].split(H)
    R_r, R_z, R_n = p["weight_hh"].split(H)
    bi_r, bi_z, bi_n = p["bias_ih"].split(H)
    bh_r, bh_z, bh_n = p["bias_hh"].split(H)
    outputs = []
    for t in range(x.shape[0]):
        r = torch.sigmoid(x[t] @ W_r.T + bi_r + h @ R_r.T + bh_r)
        z = torch.sigmoid(x[t] @ W_z.T + bi_z + h @ R_z.T + bh_z)
        n = torch.tanh(x[t] @ W_n.T + bi_n + (r * h) @ R_n.T + bh_n)
        h = (1 - z) * n + z * h
        outputs.append(h)
    return torch.stack(outputs), (h,)


ELMAN_F = {
    "sigmoid": torch.sigmoid,
    "leaky_relu": lambda v: torch.maximum(0.1 * v, v),  # the lecture's form
    "elu": torch.nn.functional.elu,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def reference_elman(p, x, h, nonlinearity):
    f = ELMAN_F[nonlinearity]
    outputs = []
    for t in range(x.shape[0]):
        h = f(x[t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])
        outputs.append(h)
    return torch.stack(outputs), (h,)


LSTM_CASES = [(None, True)] + [(v, True) for v in VARIANTS if v != "NP"] + [(v, False) for v in VARIANTS]


@pytest.mark.parametrize("variant,peephole", LSTM_CASES,
                         ids=[f"{v or 'standard'}-{'peephole' if p else 'nopeep'}" for v, p in LSTM_CASES])
def test_lstm_variants_match_reference(variant, peephole):
    layer = rnnkit.LSTM(I, H, peephole=peephole, variant=variant, dtype=np.float64, rng=1)

    def reference(p, x, h, c, a=None):
        return reference_lstm(p, x, h, c, a, variant, peephole)

    assert compare(layer, reference, seed=3) < 1e-10


def test_textbook_gru_matches_reference():
    layer = rnnkit.GRU(I, H, reset_after=False, dtype=np.float64, rng=2)
    assert compare(layer, reference_textbook_gru, seed=4) < 1e-10


@pytest.mark.parametrize("nonlinearity", sorted(ELMAN_F))
def test_elman_activations_match_reference(nonlinearity):
    layer = rnnkit.RNN(I, H, nonlinearity=nonlinearity, dtype=np.float64, rng=3)
    assert compare(layer, lambda p, x, h: reference_elman(p, x, h, nonlinearity), seed=5) < 1e-10


def test_removed_gates_have_no_weights():
    shapes = {v: rnnkit.LSTM(I, H, variant=v).weight_ih_l0.shape[0] // H for v in VARIANTS}
    assert shapes == {"V": 4, "NIG": 3, "NFG": 3, "NOG": 3, "NIAF": 4, "NOAF": 4, "NP": 4, "CIFG": 3, "FGR": 4}
    assert rnnkit.LSTM(I, H, variant="V").weight_peephole_l0.shape == (3, H)
    assert rnnkit.LSTM(I, H, variant="CIFG").weight_peephole_l0.shape == (2, H)
    assert not hasattr(rnnkit.LSTM(I, H, variant="NP"), "weight_peephole_l0")
    assert rnnkit.LSTM(I, H, variant="FGR").weight_gate_l0.shape == (3 * H, 3 * H)

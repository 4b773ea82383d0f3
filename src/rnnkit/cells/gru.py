"""The gated recurrent unit (Cho et al. 2014), in both of its published forms.

Gate blocks in PyTorch's order r, z, n:

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)                 reset gate
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)                 update gate
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))          reset_after=True
    n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)          reset_after=False
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

`reset_after=True` is PyTorch's and cuDNN's formula: the reset gate scales the recurrent
projection after the matrix product, so one GEMM per step covers all three blocks.
`reset_after=False` is the textbook formula of the lectures (Cho et al.): the reset gate scales
h_{t-1} before the product, which costs a second, dependent GEMM per step.

Backward, one step (dh_t arriving from the output and from step t+1; q_t = W_hn h_{t-1} + b_hn
kept from the forward pass when reset_after=True):

    dn = dh_t * (1 - z_t)        dz_n = dn * (1 - n_t^2)
    dz = dh_t * (h_{t-1} - n_t)  dz_z = dz * z_t (1 - z_t)
    reset_after=True:   dr = dz_n * q_t,                  d(recurrent n block) = dz_n * r_t
    reset_after=False:  dr = (dz_n W_hn) * h_{t-1},       and dh_{t-1} gains (dz_n W_hn) * r_t
    dz_r = dr * r_t (1 - r_t)
    dh_{t-1} = dh_t * z_t + (gradient of the recurrent projection) W_hh

Layer normalisation (`layer_norm=True`; Ba et al. give it for the LSTM only) normalises the two
projections as every cell does (`cells/base.py`), each as one 3H vector:

    a_t = LN(W_ih x_t; gain_ih) + b_ih          q_t = LN(W_hh h_{t-1}; gain_hh) + b_hh
    r_t, z_t = sigma(a_t + q_t) in blocks r, z   n_t = tanh(a_n + r_t * q_n)

so PyTorch's form keeps its one GEMM per step, and the reset gate scales the normalised
recurrent candidate block: r * (LN(W_hh h)_n + b_hn). The textbook form refuses it: its W_hn
reads r_t * h_{t-1}, which needs r_t, hence the normalised r block, before the n block of the
same projection exists, so the recurrent projection cannot be normalised as one vector.

Recurrent dropout feeds m * h_{t-1} to every product with W_hh (the textbook W_hn reads
r_t * m * h_{t-1}, as Keras does); the z_t * h_{t-1} term keeps the undropped state.
"""

from __future__ import annotations

import numpy as np

from ..ops import sigmoid
from .base import Cell, State


class GRUCell(Cell):
    num_blocks = 3
    state_names = ("h",)

    def __init__(self, input_size, hidden_size, *, bias, dtype, rng, reset_after=True, layer_norm=False):
        self.reset_after = bool(reset_after)
        if layer_norm and not self.reset_after:
            raise ValueError("layer_norm needs reset_after=True: the textbook GRU's W_hn reads r_t * h_{t-1}, so "
                             "its recurrent projection cannot be normalised as one vector")
        # Only PyTorch's form multiplies the recurrent n block by r, so only it needs a separate
        # gradient for the recurrent projection.
        self.shares_preactivation = not self.reset_after
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, rng=rng, layer_norm=layer_norm)
        H = hidden_size
        self.gates = slice(0, 2 * H)  # r and z, which always see the plain sum
        self.reset, self.update, self.candidate = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)

    @property
    def kernel_name(self):
        """Each form has its compiled kernel: `kernels/gru.py` and `kernels/gru_textbook.py`."""
        return "gru" if self.reset_after else "gru_textbook"

    def new_cache(self, steps, batch, state0):
        cache = super().new_cache(steps, batch, state0)
        cache.act = np.empty((steps, batch, 3 * self.hidden_size), dtype=self.dtype)  # r, z, n
        # reset_after: q_t = W_hn h_{t-1} + b_hn; textbook: r_t * h_{t-1}. Either way (T, B, H).
        cache.kept = np.empty((steps, batch, self.hidden_size), dtype=self.dtype)
        return cache

    def _hidden_weights(self):
        """(W_hr;W_hz), W_hn, (b_hr;b_hz), b_hn: the recurrent weights split by what they see."""
        w = self.weight_hh.value
        b = self.bias_hh.value if self.bias_hh is not None else None
        split = 2 * self.hidden_size
        return w[:split], w[split:], (b[:split] if b is not None else None), (b[split:] if b is not None else None)

    def step(self, t: int, input_projection: np.ndarray, state: State, cache) -> State:
        h_prev = state[0]
        act, kept = cache.act[t], cache.kept[t]
        if self.reset_after:
            recurrent = self.recurrent_projection(t, h_prev, cache)
            kept[...] = recurrent[:, self.candidate]
        else:
            h_fed = self.fed_state(h_prev, cache)
            w_gates, w_candidate, b_gates, b_candidate = self._hidden_weights()
            recurrent = h_fed @ w_gates.T
            if b_gates is not None:
                recurrent += b_gates
        gates = act[:, self.gates]
        np.add(input_projection[:, self.gates], recurrent[:, self.gates], out=gates)
        sigmoid(gates, out=gates)
        r, z = act[:, self.reset], act[:, self.update]

        n = act[:, self.candidate]
        if self.reset_after:
            np.multiply(r, kept, out=n)
        else:
            np.multiply(r, h_fed, out=kept)
            np.matmul(kept, w_candidate.T, out=n)
            if b_candidate is not None:
                n += b_candidate
        n += input_projection[:, self.candidate]
        np.tanh(n, out=n)

        h = cache.h[t + 1]  # h = n + z * (h_prev - n)
        np.subtract(h_prev, n, out=h)
        h *= z
        h += n
        return (h,)

    def step_backward(self, t, dstate, cache, d_input, d_recurrent):
        dh = dstate[0]
        act, kept, h_prev = cache.act[t], cache.kept[t], cache.h[t]
        r, z, n = act[:, self.reset], act[:, self.update], act[:, self.candidate]
        dz_n = d_input[:, self.candidate]
        np.multiply(dh, 1.0 - z, out=dz_n)
        dz_n *= 1.0 - n * n
        dh_prev = dh * z

        if self.reset_after:
            np.multiply(dz_n, r, out=d_recurrent[:, self.candidate])
            dr = dz_n * kept
        else:
            h_fed = self.fed_state(h_prev, cache)
            d_reset_h = dz_n @ self._hidden_weights()[1]  # gradient w.r.t. r * h_fed
            dr = d_reset_h * h_fed
        np.multiply(dr, r * (1.0 - r), out=d_input[:, self.reset])
        np.multiply(dh * (h_prev - n), z * (1.0 - z), out=d_input[:, self.update])

        if self.reset_after:
            d_recurrent[:, self.gates] = d_input[:, self.gates]
            dh_prev += self.recurrent_backward(t, d_recurrent, cache)
        else:
            d_fed = d_reset_h * r + d_input[:, self.gates] @ self._hidden_weights()[0]  # dL/dh_fed
            dh_prev += d_fed if cache.recurrent_mask is None else d_fed * cache.recurrent_mask
        return (dh_prev,)

    def add_recurrent_weight_grad(self, cache, d_recurrent_2d):
        if self.reset_after:
            super().add_recurrent_weight_grad(cache, d_recurrent_2d)
            return
        H = self.hidden_size
        h_prev = self.fed_states(cache)
        reset_h = cache.kept.reshape(-1, H)
        self.weight_hh.grad[: 2 * H] += d_recurrent_2d[:, : 2 * H].T @ h_prev
        self.weight_hh.grad[2 * H:] += d_recurrent_2d[:, 2 * H:].T @ reset_h

    def internals(self, cache):
        act = cache.act
        H = self.hidden_size
        return {"h": cache.h[1:], "r": act[..., :H], "z": act[..., H:2 * H], "n": act[..., 2 * H:]}

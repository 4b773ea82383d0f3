"""The Elman (vanilla) recurrent cell.

    h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

with f one of tanh, relu, sigmoid, leaky_relu (the lecture's max(0.1 x, x) by default) or elu.

Backward through one step, with dh_t the gradient arriving at h_t (from the output at step t
and from step t+1):

    dz_t      = dh_t * f'(z_t)          (f' read from the stored output h_t)
    dh_{t-1}  = dz_t W_hh               (through the layer norm / dropout mask, `cells/base.py`)
    dW_ih    += dz_t^T x_t,   dW_hh += dz_t^T h_{t-1},   db += sum over the batch of dz_t
"""

from __future__ import annotations

import numpy as np

from ..ops import Activation, get_activation, leaky_relu
from .base import Cell, State


def elman_activation(nonlinearity: str | Activation, negative_slope: float = 0.1) -> Activation:
    """Resolve the Elman nonlinearity; `negative_slope` only applies to leaky_relu."""
    if nonlinearity == "leaky_relu":
        return leaky_relu(negative_slope)
    if nonlinearity in ("identity",):
        raise ValueError("an Elman cell needs a nonlinearity; identity makes it a linear filter")
    return get_activation(nonlinearity)


class ElmanCell(Cell):
    num_blocks = 1
    state_names = ("h",)
    kernel_name = "elman"
    #: The nonlinearities the compiled kernel knows by name (a custom Activation runs in NumPy).
    fused_nonlinearities = ("tanh", "relu", "sigmoid", "leaky_relu", "elu")

    def __init__(self, input_size, hidden_size, *, bias, dtype, rng, nonlinearity="tanh", negative_slope=0.1,
                 layer_norm=False):
        self.activation = elman_activation(nonlinearity, negative_slope)
        self.nonlinearity, self.negative_slope = nonlinearity, float(negative_slope)
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, rng=rng, layer_norm=layer_norm)

    def has_fused_form(self):
        return (super().has_fused_form() and isinstance(self.nonlinearity, str)
                and self.nonlinearity in self.fused_nonlinearities)

    def step(self, t: int, input_projection: np.ndarray, state: State, cache) -> State:
        pre = self.recurrent_projection(t, state[0], cache)
        pre += input_projection
        h = cache.h[t + 1]
        h[...] = self.activation(pre)
        return (h,)

    def step_backward(self, t, dstate, cache, d_input, d_recurrent):
        np.multiply(dstate[0], self.activation.grad_from_output(cache.h[t + 1]), out=d_input)
        return (self.recurrent_backward(t, d_input, cache),)

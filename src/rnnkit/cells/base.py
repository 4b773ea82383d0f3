"""What every recurrent cell provides to the shared time loop (`rnnkit.timeloop`).

A cell is one direction of one layer. Its pre-activations are split into G blocks of H rows
(G = 1 for Elman, 3 for GRU, up to 4 for LSTM), and two projections feed them:

    input projection      a_t = W_ih x_t + b_ih        (G*H,)   all T steps in one GEMM
    recurrent projection  r_t = W_hh h_{t-1} + b_hh    (G*H,)   one GEMM per step

The time loop computes the input projection for the whole sequence, then calls `step` once per
time step and `step_backward` once per step in reverse. A step stores the activations it made in
preallocated (T, B, ...) arrays of a cache, so backward reads them instead of recomputing; `h`
is stored as (T+1, B, H) with h[0] the initial state, so h[:-1] is "h_{t-1} for every t" and the
recurrent weight gradient is one GEMM over all steps at the end:

    dL/dW_ih = sum_t da_t^T x_t       dL/dW_hh = sum_t dr_t^T h_{t-1}

where da_t and dr_t are the gradients w.r.t. the two projections (equal, unless the cell uses
the recurrent projection in some other way than adding it, as PyTorch's GRU does).

Two optional parts make a cell fast without changing what it computes:

- `fused()` returns a compiled kernel module (`rnnkit.kernels`) that runs the whole loop of
  `step` (`forward_sequence`) and of `step_backward` (`backward_sequence`) in one call, with a
  cache of the same layout; None (the default) means the loop calls `step` per time step.
- `inference_step(x, state)` is one step with no cache, for sampling a token at a time.

Two options change the projections themselves, for every cell alike (so they live here):

Layer normalisation (`layer_norm=True`; Ba, Kiros & Hinton 2016, their LSTM's eq. 20-22) puts
each projection's product through its own `LayerNorm` (`cells/layernorm.py`) before the bias:

    a_t = LN(W_ih x_t; gain_ih) + b_ih       r_t = LN(W_hh h_{t-1}; gain_hh) + b_hh

Each is normalised as one G*H vector, as in the paper: the gates share one mean and variance,
and the per-feature gain still lets each gate find its own scale; per-gate statistics would add
G normalisations per projection for no gain the paper reports. The projection's bias *is* the
normalisation's shift (a separate shift would be a second copy of b), so only the gains are new
parameters (`layer_norm_ih_weight`, `layer_norm_hh_weight`, initialised to 1). The input side is
normalised for all T steps at once, after the one GEMM. Backward, with da_t and dr_t as before:

    dL/d(W_ih x_t) = LN'(da_t)               dL/d(W_hh h_{t-1}) = LN'(dr_t)
    dW_ih = sum_t LN'(da_t)^T x_t            dW_hh = sum_t LN'(dr_t)^T h_{t-1}

(LN' the layer norm's backward, `LayerNorm.backward`). Of the compiled kernels only the LSTM's
(`kernels/lstm_variants.py`) normalises; a normalised GRU or Elman cell runs the NumPy loop.

Recurrent dropout (Gal & Ghahramani 2016): with a mask m (B, H) (inverted dropout, drawn once per
sequence by the layer, `cache.recurrent_mask`), the state fed to W_hh is m * h_{t-1}, at every
step; h_{t-1} itself is unchanged wherever else it is used (the LSTM's c, the GRU's z * h_{t-1}):

    r_t = W_hh (m * h_{t-1}) + b_hh          dL/dh_{t-1} += m * (dr_t W_hh)
    dW_hh = sum_t dr_t^T (m * h_{t-1})

(The input mask of the same paper is applied by the time loop, to x before the input GEMM.)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import kernels
from ..init import as_generator, uniform_fan
from ..module import Parameter
from .layernorm import LayerNorm, statistics

State = tuple[np.ndarray, ...]


class Cell:
    """Base class. Subclasses set `num_blocks`, `state_names`, and implement `step`,
    `step_backward` (and `_state_widths`/`new_cache`/`internals` when they keep more than h)."""

    num_blocks: int = 1
    state_names: tuple[str, ...] = ("h",)
    #: True when the input and recurrent projections enter only as their sum, so their
    #: gradients are the same array and the loop keeps one buffer.
    shares_preactivation: bool = True

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool, dtype, rng: np.random.Generator | int,
                 layer_norm: bool = False):
        rng = as_generator(rng)
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.num_blocks * hidden_size
        # PyTorch's initialisation for every recurrent weight and bias: U(-1/sqrt(H), 1/sqrt(H)).
        self.weight_ih = Parameter(uniform_fan(rng, (rows, input_size), hidden_size, dtype))
        self.weight_hh = Parameter(uniform_fan(rng, (rows, hidden_size), hidden_size, dtype))
        self.bias_ih = Parameter(uniform_fan(rng, (rows,), hidden_size, dtype)) if bias else None
        self.bias_hh = Parameter(uniform_fan(rng, (rows,), hidden_size, dtype)) if bias else None
        self.layer_norm = bool(layer_norm)
        # The bias after each normalisation is its shift (module docstring): gains only.
        self.norm_ih = LayerNorm(rows, dtype, shift=False) if self.layer_norm else None
        self.norm_hh = LayerNorm(rows, dtype, shift=False) if self.layer_norm else None

    # ----------------------------------------------------------------- parameters and state
    def params(self) -> dict[str, Parameter]:
        """The cell's parameters by their PyTorch name (without the _l0 / _reverse suffix)."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + self.extra_param_names()
        found = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        return {**found, **self.layer_norm_params()}

    def extra_param_names(self) -> tuple[str, ...]:
        return ()

    def layer_norm_params(self) -> dict[str, Parameter]:
        """The normalisations' parameters by name (none without layer_norm)."""
        if not self.layer_norm:
            return {}
        return {"layer_norm_ih_weight": self.norm_ih.weight, "layer_norm_hh_weight": self.norm_hh.weight}

    def state_widths(self) -> tuple[int, ...]:
        """Width of each state component, in the order of `state_names`."""
        return (self.hidden_size,) * len(self.state_names)

    @property
    def dtype(self) -> np.dtype:
        return self.weight_hh.value.dtype

    def new_cache(self, steps: int, batch: int, state0: State) -> SimpleNamespace:
        """Preallocated per-step storage; subclasses add their own arrays."""
        h = np.empty((steps + 1, batch, self.hidden_size), dtype=self.dtype)
        h[0] = state0[0]
        cache = SimpleNamespace(h=h, recurrent_mask=None)
        if self.layer_norm:
            shape = (steps, batch, self.num_blocks * self.hidden_size)
            cache.ln_ih = statistics(shape, self.dtype)  # (v_hat, 1/sigma) of each projection
            cache.ln_hh = statistics(shape, self.dtype)
            cache.d_hh_product = np.empty(shape, dtype=self.dtype)  # dL/d(W_hh h_{t-1}), for dW_hh
        return cache

    # ----------------------------------------------------------------------------- maths
    def input_projection(self, x: np.ndarray, cache=None) -> np.ndarray:
        """a = x W_ih^T + b_ih (or LN(x W_ih^T) + b_ih) for all T steps in one GEMM:
        x (T, B, I) -> (T, B, G*H). The cache, which keeps the normalisation's statistics, is
        needed only with layer_norm (the compiled kernels, which have none, pass None)."""
        steps, batch, features = x.shape
        rows = self.weight_ih.value.shape[0]
        projection = (x.reshape(steps * batch, features) @ self.weight_ih.value.T).reshape(steps, batch, rows)
        if self.layer_norm:
            projection = self.norm_ih.forward(projection, *cache.ln_ih)
        if self.bias_ih is not None:
            projection += self.bias_ih.value
        return projection

    def fed_state(self, h_prev: np.ndarray, cache) -> np.ndarray:
        """The state W_hh reads: h_{t-1}, or m * h_{t-1} under recurrent dropout."""
        return h_prev if cache.recurrent_mask is None else h_prev * cache.recurrent_mask

    def recurrent_projection(self, t: int, h_prev: np.ndarray, cache) -> np.ndarray:
        """r_t = W_hh h_{t-1} + b_hh for a (B, H) batch: the one GEMM of a step (module
        docstring for the normalised and the dropped-out forms)."""
        projection = self.fed_state(h_prev, cache) @ self.weight_hh.value.T
        if self.layer_norm:
            projection = self.norm_hh.forward(projection, cache.ln_hh[0][t], cache.ln_hh[1][t])
        if self.bias_hh is not None:
            projection += self.bias_hh.value
        return projection

    def recurrent_backward(self, t: int, d_recurrent: np.ndarray, cache) -> np.ndarray:
        """dL/dh_{t-1} through `recurrent_projection` alone, from dL/dr_t (B, G*H)."""
        d_product = d_recurrent
        if self.layer_norm:
            d_product = cache.d_hh_product[t]
            d_product[...] = self.norm_hh.backward(d_recurrent, cache.ln_hh[0][t], cache.ln_hh[1][t])
        dh_prev = d_product @ self.weight_hh.value
        if cache.recurrent_mask is not None:
            dh_prev *= cache.recurrent_mask
        return dh_prev

    def finish_backward(self, cache, d_input: np.ndarray, d_recurrent: np.ndarray) -> np.ndarray:
        """After the backward loop (NumPy or compiled): every weight gradient, one GEMM each, and
        dL/dx = dL/d(x W_ih^T) W_ih for all steps, (T, B, I), from dL/da and dL/dr (T, B, G*H)."""
        x = cache.x
        steps, batch, features = x.shape
        d_product = self.input_product_gradient(cache, d_input)
        if self.layer_norm:  # where accumulate_grads reads it; not kept past this call (it is as big as d_input)
            cache.d_ih_product = d_product
        self.accumulate_grads(cache, x, d_input, d_recurrent)
        vars(cache).pop("d_ih_product", None)
        return (d_product.reshape(steps * batch, -1) @ self.weight_ih.value).reshape(steps, batch, features)

    def input_product_gradient(self, cache, d_input: np.ndarray) -> np.ndarray:
        """dL/d(x W_ih^T) for all steps from dL/da (T, B, G*H): d_input itself, or taken back
        through the input's normalisation (adding its gain's gradient)."""
        if not self.layer_norm:
            return d_input
        return self.norm_ih.backward(d_input, *cache.ln_ih)

    def step(self, t: int, input_projection: np.ndarray, state: State, cache) -> State:
        raise NotImplementedError

    #: The `rnnkit.kernels` module that implements this cell family (None: no compiled kernel).
    kernel_name: str | None = None

    def has_fused_form(self) -> bool:
        """Whether the compiled kernel covers this cell's configuration (subclasses narrow it, or,
        as the LSTM does for layer norm, widen it). The GRU and Elman kernels do not normalise."""
        return self.kernel_name is not None and not self.layer_norm

    def fused(self):
        """The compiled kernel module for this cell, or None to run the NumPy steps."""
        if self.has_fused_form() and kernels.available(self.dtype):
            return kernels.load(self.kernel_name)
        return None

    def inference_step(self, x: np.ndarray, state: State) -> State:
        """One step for inference, keeping nothing for backward: x (B, I) -> the new state."""
        fused = self.fused()
        if fused is not None:
            return fused.step(self, x, state)
        cache = self.new_cache(1, x.shape[0], state)
        return self.step(0, self.input_projection(x[None], cache)[0], state, cache)

    def step_backward(self, t: int, dstate: State, cache, d_input: np.ndarray, d_recurrent: np.ndarray) -> State:
        """Given dL/d(state_t) (the output gradient already added to dh), write dL/da_t into
        `d_input` and dL/dr_t into `d_recurrent` (the same array when `shares_preactivation`)
        and return dL/d(state_{t-1})."""
        raise NotImplementedError

    def accumulate_grads(self, cache, x: np.ndarray, d_input: np.ndarray, d_recurrent: np.ndarray) -> None:
        """Add the weight gradients of a whole sequence, each as one GEMM over all T*B rows.
        x: (T, B, I) inputs (as fed: after input dropout); d_input, d_recurrent: (T, B, G*H).
        With layer_norm the loop has put dL/d(x W_ih^T) in `cache.d_ih_product`."""
        rows = self.num_blocks * self.hidden_size
        d_input_2d = d_input.reshape(-1, rows)
        d_product = cache.d_ih_product if self.layer_norm else d_input
        kernels.add_matmul(self.weight_ih.grad, d_product.reshape(-1, rows).T, x.reshape(-1, self.input_size))
        self.add_recurrent_weight_grad(cache, d_recurrent.reshape(-1, rows))
        if self.bias_ih is not None:
            d_bias = d_input_2d.sum(axis=0)
            self.bias_ih.grad += d_bias
            self.bias_hh.grad += d_bias if d_recurrent is d_input else d_recurrent.reshape(-1, rows).sum(axis=0)

    def fed_states(self, cache) -> np.ndarray:
        """Every step's state as W_hh read it, (T*B, H): h_{t-1}, or m * h_{t-1}."""
        h_prev = cache.h[:-1] if cache.recurrent_mask is None else cache.h[:-1] * cache.recurrent_mask
        return h_prev.reshape(-1, self.hidden_size)

    def add_recurrent_weight_grad(self, cache, d_recurrent_2d: np.ndarray) -> None:
        d_product = cache.d_hh_product.reshape(d_recurrent_2d.shape) if self.layer_norm else d_recurrent_2d
        kernels.add_matmul(self.weight_hh.grad, d_product.T, self.fed_states(cache))

    def internals(self, cache) -> dict[str, np.ndarray]:
        """Every step's activations by name, each (T, B, width), in processing order."""
        return {"h": cache.h[1:]}

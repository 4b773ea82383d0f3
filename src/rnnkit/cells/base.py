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
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import kernels
from ..init import uniform_fan
from ..module import Parameter

State = tuple[np.ndarray, ...]


class Cell:
    """Base class. Subclasses set `num_blocks`, `state_names`, and implement `step`,
    `step_backward` (and `_state_widths`/`new_cache`/`internals` when they keep more than h)."""

    num_blocks: int = 1
    state_names: tuple[str, ...] = ("h",)
    #: True when the input and recurrent projections enter only as their sum, so their
    #: gradients are the same array and the loop keeps one buffer.
    shares_preactivation: bool = True

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool, dtype, rng: np.random.Generator):
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.num_blocks * hidden_size
        # PyTorch's initialisation for every recurrent weight and bias: U(-1/sqrt(H), 1/sqrt(H)).
        self.weight_ih = Parameter(uniform_fan(rng, (rows, input_size), hidden_size, dtype))
        self.weight_hh = Parameter(uniform_fan(rng, (rows, hidden_size), hidden_size, dtype))
        self.bias_ih = Parameter(uniform_fan(rng, (rows,), hidden_size, dtype)) if bias else None
        self.bias_hh = Parameter(uniform_fan(rng, (rows,), hidden_size, dtype)) if bias else None

    # ----------------------------------------------------------------- parameters and state
    def params(self) -> dict[str, Parameter]:
        """The cell's parameters by their PyTorch name (without the _l0 / _reverse suffix)."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + self.extra_param_names()
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def extra_param_names(self) -> tuple[str, ...]:
        return ()

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
        return SimpleNamespace(h=h)

    # ----------------------------------------------------------------------------- maths
    def recurrent_projection(self, h_prev: np.ndarray) -> np.ndarray:
        """r_t = W_hh h_{t-1} + b_hh for a (B, H) batch: the one GEMM of a step."""
        projection = h_prev @ self.weight_hh.value.T
        if self.bias_hh is not None:
            projection += self.bias_hh.value
        return projection

    def step(self, t: int, input_projection: np.ndarray, state: State, cache) -> State:
        raise NotImplementedError

    #: The `rnnkit.kernels` module that implements this cell family (None: no compiled kernel).
    kernel_name: str | None = None

    def has_fused_form(self) -> bool:
        """Whether the compiled kernel covers this cell's configuration (subclasses narrow it)."""
        return self.kernel_name is not None

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
        projection = x @ self.weight_ih.value.T
        if self.bias_ih is not None:
            projection += self.bias_ih.value
        return self.step(0, projection, state, self.new_cache(1, x.shape[0], state))

    def step_backward(self, t: int, dstate: State, cache, d_input: np.ndarray, d_recurrent: np.ndarray) -> State:
        """Given dL/d(state_t) (the output gradient already added to dh), write dL/da_t into
        `d_input` and dL/dr_t into `d_recurrent` (the same array when `shares_preactivation`)
        and return dL/d(state_{t-1})."""
        raise NotImplementedError

    def accumulate_grads(self, cache, x: np.ndarray, d_input: np.ndarray, d_recurrent: np.ndarray) -> None:
        """Add the weight gradients of a whole sequence, each as one GEMM over all T*B rows.
        x: (T, B, I) inputs; d_input, d_recurrent: (T, B, G*H)."""
        rows = self.num_blocks * self.hidden_size
        d_input_2d = d_input.reshape(-1, rows)
        kernels.add_matmul(self.weight_ih.grad, d_input_2d.T, x.reshape(-1, self.input_size))
        self.add_recurrent_weight_grad(cache, d_recurrent.reshape(-1, rows))
        if self.bias_ih is not None:
            d_bias = d_input_2d.sum(axis=0)
            self.bias_ih.grad += d_bias
            self.bias_hh.grad += d_bias if d_recurrent is d_input else d_recurrent.reshape(-1, rows).sum(axis=0)

    def add_recurrent_weight_grad(self, cache, d_recurrent_2d: np.ndarray) -> None:
        h_prev = cache.h[:-1].reshape(-1, self.hidden_size)
        kernels.add_matmul(self.weight_hh.grad, d_recurrent_2d.T, h_prev)

    def internals(self, cache) -> dict[str, np.ndarray]:
        """Every step's activations by name, each (T, B, width), in processing order."""
        return {"h": cache.h[1:]}

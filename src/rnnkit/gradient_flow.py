"""Gradient flow through time, measured with the hand-derived BPTT: how much a loss at the last
step still feels each earlier state (Bengio et al. 1994; Hochreiter 1991; Pascanu et al. 2013).

For a loss L_T that reads only the output at the last step T, BPTT carries backwards

    dL_T/dh_t = (dh_{t+1}/dh_t)^T dL_T/dh_{t+1}        (and dL_T/dc_t for the LSTM)

and the norm of that vector against the lag k = T - t is the classic picture: for an Elman RNN
each factor is diag(f'(z_{t+1})) W_hh, so the norm shrinks (or grows) roughly like the powers of
W_hh's spectral radius; the LSTM's cell state is carried by dc_{t-1} = f_t * dc_t + ..., which
stays alive as long as the forget gate is near 1.

`gradient_flow` runs one forward pass and one backward pass with a gradient only at the last
output and reads every state gradient the time loop carries (`rnnkit.timeloop`'s `record`): no
finite differences, no re-running the forward from each h_t. Recording runs the NumPy loop even
where a compiled kernel exists (the kernels report nothing per step). Parameter gradients the
pass adds are taken away again, and it runs in eval mode (no dropout), so the model is left as
it was found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data.batches import Padded
from .init import as_generator
from .network import SequenceNetwork
from .recurrent import RecurrentLayer

__all__ = ["GradientFlow", "gradient_flow"]


@dataclass
class GradientFlow:
    """The state gradients of one backward pass from a loss at the last step.

    gradients[layer][name]: (T + 1, B, width), layer keyed as in `cache.internals()` ("l0",
    "l1_reverse", ...), name a state component ("h", and "c" for the LSTM). Index t is the
    state after reading x_0 .. x_{t-1} (t = 0 the initial state, t = T the last state); for a
    reverse direction, after reading x_t .. x_{T-1} (`rnnkit.timeloop`). These are the
    gradients w.r.t. the state as the next step receives it, so at t = T the LSTM's c has none
    (the loss reads h_T; c_T reaches it through h_T, within the step that made both)."""

    gradients: dict[str, dict[str, np.ndarray]]

    @property
    def steps(self) -> int:
        """T, the number of input steps."""
        return next(iter(next(iter(self.gradients.values())).values())).shape[0] - 1

    def _layer(self, layer: str | None) -> str:
        if layer is None:  # the top layer's forward direction
            layer = max((k for k in self.gradients if not k.endswith("_reverse")), key=lambda k: int(k[1:]))
        if layer not in self.gradients:
            raise ValueError(f"no layer {layer!r}; this model has {', '.join(self.gradients)}")
        return layer

    def norms(self, name: str = "h", layer: str | None = None) -> np.ndarray:
        """||dL_T/d state_t|| for t = 0 .. T, (T + 1,): the norm over the units and the batch
        (for one sequence, the vector's norm). layer: None for the top layer's forward cell."""
        named = self.gradients[self._layer(layer)]
        if name not in named:
            raise ValueError(f"no state {name!r}; the states are {', '.join(named)}")
        gradient = named[name]
        return np.sqrt(np.square(gradient.astype(np.float64)).sum(axis=(1, 2)))

    def by_lag(self, name: str = "h", layer: str | None = None) -> np.ndarray:
        """The norms indexed by lag k = T - t: element k is ||dL_T/d state_{T-k}||, (T + 1,)."""
        return self.norms(name, layer)[::-1]


def gradient_flow(model: RecurrentLayer | SequenceNetwork, inputs, d_last=None, *, state=None,
                  rng: np.random.Generator | int | None = 0) -> GradientFlow:
    """The gradient of a loss at the last step w.r.t. every state of `model` on `inputs`.

    model: a recurrent layer (`rnnkit.RNN` / `LSTM` / `GRU`) or a `SequenceNetwork`; inputs
    what its `forward` takes (unpadded: every sequence ends at the last step). d_last:
    dL_T/d(output at the last step), (B, width) with width the layer's D*H or the network's
    output_size (say, a loss's gradient there); None draws a random direction of norm 1 from
    `rng`. state: the initial state (None: zeros). Returns a `GradientFlow`."""
    if isinstance(inputs, Padded):
        raise ValueError("gradient_flow measures from the last step of every sequence; give unpadded inputs")
    if not isinstance(model, (RecurrentLayer, SequenceNetwork)):
        raise ValueError(f"gradient_flow needs a recurrent layer or a SequenceNetwork, got {type(model).__name__}")
    layer = model if isinstance(model, RecurrentLayer) else model.rnn
    saved = [p.grad.copy() for p in model.parameters()]
    recorded: dict[str, dict[int, tuple[np.ndarray, ...]]] = {}

    def record(key: str, position: int, d_state) -> None:
        recorded.setdefault(key, {})[position] = tuple(np.array(component) for component in d_state)

    with model.evaluating():
        outputs, _, cache = model.forward(inputs, state)
        batch_first = isinstance(model, RecurrentLayer) and model.batch_first
        last = outputs[:, -1] if batch_first else outputs[-1]
        if d_last is None:
            d_last = as_generator(rng).standard_normal(last.shape)
            d_last /= np.linalg.norm(d_last)
        d_last = np.asarray(d_last, dtype=last.dtype)
        if d_last.shape != last.shape:
            raise ValueError(f"d_last must have the last output's shape {last.shape} (batch, width), "
                             f"got {d_last.shape}")
        d_outputs = np.zeros_like(outputs)
        if batch_first:
            d_outputs[:, -1] = d_last
        else:
            d_outputs[-1] = d_last
        try:
            model.backward(d_outputs, cache, record=record)
        finally:
            for param, grad in zip(model.parameters(), saved):
                param.grad[...] = grad
    gradients = {}
    for key in sorted(recorded, key=lambda k: (int(k[1:].split("_")[0]), k)):  # l0, l0_reverse, l1, ...
        by_position = recorded[key]
        positions = sorted(by_position)
        gradients[key] = {name: np.stack([by_position[t][k] for t in positions])
                          for k, name in enumerate(layer.state_names)}
    return GradientFlow(gradients)

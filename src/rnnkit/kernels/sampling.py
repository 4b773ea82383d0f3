"""Drawing tokens one at a time from an embedding -> standard LSTM stack -> linear head, compiled.

Sampling at B = 1 reads every weight once per token, and the step itself is two matrix-vector
products per layer and one for the head. Called from Python once per token, the code around
those products (the layers' dispatch, the state's arrays, the draw) took a third of the time on
the 2-core Xeon (`benchmarks/bench_sample.py`). This loop draws a whole run of tokens in one
call. Per token, with x = E[token] and each layer's state h_l, c_l updated in place:

    for each layer l:   z = b_ih + W_ih x + W_hh h_l        two GEMVs (`lstm.inference_step`'s order)
                        i, f, g, o, c_l, h_l as the standard cell (`lstm._activate_row`);  x = h_l
    logits = W_head h_{L-1} + b_head
    next token = `choose`: `rnnkit.decoding.choose_token`'s rule, from the uniform draw of this token

The uniforms come from the caller's Generator (`Generator.random(count)`, the same numbers as
one `random()` per token), so the compiled loop and the per-step Python loop draw the same
tokens from the same seed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .blas import gemv
from .lstm import _activate_row

kernel = njit(cache=True, error_model="numpy")


@njit(error_model="numpy")
def choose(logits, temperature, top_k, greedy, uniform):
    """The next token from one step's logits (V,): the index of the largest when `greedy`; else
    drawn from softmax(logits / temperature), limited to the `top_k` largest when 0 < top_k < V,
    by inverting the cumulative distribution at `uniform` in [0, 1). -1 when the logits are not
    finite, or not once divided by the temperature (`decoding.choose_token` raises then)."""
    z = logits.astype(np.float64) / (1.0 if greedy else temperature)
    if not np.isfinite(z).all():
        return -1
    if greedy:
        return np.argmax(logits)
    if 0 < top_k < z.shape[0]:
        cutoff = np.sort(z)[z.shape[0] - top_k]
        for k in range(z.shape[0]):
            if z[k] < cutoff:
                z[k] = -np.inf
    shifted = z - z.max()
    probabilities = np.exp(shifted - np.log(np.exp(shifted).sum()))
    cumulative = np.cumsum(probabilities / probabilities.sum())
    cumulative /= cumulative[-1]
    return np.searchsorted(cumulative, uniform, side="right")


@kernel
def sample_lstm_stack(gemv_address, embedding, w_ih, w_hh, b_ih, b_hh, w_head, b_head, h, c, first, uniforms,
                      temperature, top_k, greedy, tokens, gates, logits):
    """tokens[n] for n < len(uniforms), each fed back as the next input, starting from `first`.
    w_ih, w_hh, b_ih, b_hh: per-layer tuples; h, c: (L, H) states, updated in place; gates (4H,)
    and logits (V,): scratch (logits ends as the last token's)."""
    hidden = h.shape[1]
    token = first
    for n in range(uniforms.shape[0]):
        x = embedding[token]
        for layer in range(len(w_ih)):
            gates[:] = b_ih[layer]
            gemv(gemv_address, w_ih[layer], x, gates, 1.0)
            gemv(gemv_address, w_hh[layer], h[layer], gates, 1.0)
            _activate_row(gates, b_hh[layer], c[layer], c[layer], h[layer], h[layer], hidden)
            x = h[layer]
        gemv(gemv_address, w_head, x, logits, 0.0)
        for k in range(logits.shape[0]):
            logits[k] += b_head[k]
        token = choose(logits, temperature, top_k, greedy, uniforms[n])
        tokens[n] = token
        if token < 0:
            return


def sample(embedding, cells, head_weight, head_bias, state, first, uniforms, temperature, top_k, greedy):
    """Python entry: tokens (len(uniforms),) int64 and the final (h, c), each (L, H), from an
    embedding table (V, E), the stack's standard LSTM cells, the head's (V, H) weight and bias
    (None: none) and the initial (h, c) (L, H) (copied, not written)."""
    from ._sequence import bias_or_zeros
    from .blas import find_gemv

    dtype = embedding.dtype
    rows = 4 * cells[0].hidden_size
    h, c = (np.array(component, dtype, order="C") for component in state)
    tokens = np.empty(uniforms.shape[0], np.int64)
    head_bias = np.zeros(head_weight.shape[0], dtype) if head_bias is None else head_bias
    sample_lstm_stack(find_gemv(dtype), embedding, tuple(cell.weight_ih.value for cell in cells),
                      tuple(cell.weight_hh.value for cell in cells),
                      tuple(bias_or_zeros(cell.bias_ih, rows, dtype) for cell in cells),
                      tuple(bias_or_zeros(cell.bias_hh, rows, dtype) for cell in cells), head_weight, head_bias, h, c,
                      int(first), np.ascontiguousarray(uniforms, np.float64), float(temperature), int(top_k),
                      bool(greedy), tokens, np.empty(rows, dtype), np.empty(head_weight.shape[0], dtype))
    if tokens.size and tokens.min() < 0:
        from ..decoding import NOT_FINITE

        raise ValueError(NOT_FINITE)
    return tokens, (h, c)

"""Decoding a sequence from a recurrent decoder, given its first state: greedy and beam search.

The decoder is anything with `step(ids (B,), state) -> (logits (B, V), state)` where the state is
an array or a tuple of arrays whose axis 1 is the batch (a `SequenceNetwork`, or a hand-built
decoder in a test). Decoding starts from the token `bos` and ends at `eos` or `max_length`.

Greedy decoding takes the likeliest token at every step. Beam search keeps the `beam` likeliest
partial sequences by total log-probability,

    score(y_1 .. y_n) = sum_t log P(y_t | y_<t, start state),

extends each by every token, keeps the best `beam` again, and sets a sequence aside when it
emits `eos`; it stops when no live sequence could still beat the best finished one (scores only
fall as sequences grow) or at `max_length`. With beam = 1 it is exactly greedy decoding.
"""

from __future__ import annotations

import numpy as np

from .ops import log_softmax

__all__ = ["choose_token", "greedy_decode", "greedy_decode_batch", "beam_search", "select_state"]


NOT_FINITE = ("the network's outputs (divided by the temperature) are not finite: a diverged model, or a "
              "temperature too small, cannot be sampled from")


def choose_token(logits: np.ndarray, uniform: float, *, temperature: float = 1.0, top_k: int | None = None,
                 greedy: bool = False) -> int:
    """The next token from one step's logits (V,), for sampling: the likeliest when `greedy`;
    else the one where softmax(logits / temperature), limited to the `top_k` largest logits
    (ties at the cut kept), puts `uniform` in [0, 1) on its cumulative distribution: as
    `Generator.choice(V, p=...)` draws with that uniform. `kernels/sampling.py` compiles the same
    rule. ValueError for logits that are not finite (a diverged model), or not once divided by
    the temperature."""
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        z = np.asarray(logits, dtype=np.float64) / (1.0 if greedy else temperature)
    if not np.isfinite(z).all():
        raise ValueError(NOT_FINITE)
    if greedy:
        return int(np.argmax(logits))
    if top_k is not None and 0 < top_k < len(z):
        z = np.where(z < np.sort(z)[len(z) - top_k], -np.inf, z)
    probabilities = np.exp(log_softmax(z))
    cumulative = np.cumsum(probabilities / probabilities.sum())
    cumulative /= cumulative[-1]
    return int(np.searchsorted(cumulative, uniform, side="right"))


def select_state(state, rows: np.ndarray):
    """The state of the batch rows `rows` (axis 1), in that order."""
    if isinstance(state, tuple):
        return tuple(component[:, rows] for component in state)
    return state[:, rows]


def repeat_state(state, times: int):
    return select_state(state, np.zeros(times, dtype=np.int64))


def greedy_decode(decoder, state, bos: int, eos: int, max_length: int) -> list[int]:
    """Tokens after `bos` up to (not including) `eos`, for one sequence (state batch of 1)."""
    token, tokens = bos, []
    for _ in range(max_length):
        logits, state = decoder.step(np.array([token]), state)
        token = int(np.argmax(logits[0]))
        if token == eos:
            break
        tokens.append(token)
    return tokens


def beam_search(decoder, state, bos: int, eos: int, max_length: int, beam: int) -> list[int]:
    """The best sequence found with `beam` hypotheses (state batch of 1); see the module doc."""
    if beam <= 0:
        raise ValueError(f"the beam width must be positive, got {beam}")
    live_tokens = [[]]
    live_scores = np.zeros(1)
    live_state = state
    finished: list[tuple[float, list[int]]] = []
    for _ in range(max_length):
        last = np.array([tokens[-1] if tokens else bos for tokens in live_tokens])
        logits, next_state = decoder.step(last, live_state)
        scores = live_scores[:, None] + log_softmax(np.asarray(logits, dtype=np.float64))  # (live, V)
        vocabulary = scores.shape[1]
        best = np.argsort(-scores, axis=None, kind="stable")[:beam]
        rows, tokens = np.divmod(best, vocabulary)
        keep_rows, keep_tokens, keep_scores = [], [], []
        for row, token in zip(rows, tokens):
            if token == eos:
                finished.append((float(scores[row, token]), live_tokens[row]))
            else:
                keep_rows.append(row)
                keep_tokens.append(live_tokens[row] + [int(token)])
                keep_scores.append(scores[row, token])
        best_finished = max((score for score, _ in finished), default=-np.inf)
        if not keep_rows or max(keep_scores) <= best_finished:
            break
        live_tokens, live_scores = keep_tokens, np.array(keep_scores)
        live_state = select_state(next_state, np.array(keep_rows))
    else:  # max_length reached: the live sequences count as they are
        finished.extend(zip(live_scores.tolist(), live_tokens))
    return max(finished, key=lambda item: item[0])[1]


def greedy_decode_batch(decoder, state, bos: int, eos: int, max_length: int) -> list[list[int]]:
    """Greedy decoding of a whole batch at once (state batch of B): the same tokens as
    `greedy_decode` row by row, in max_length steps of one (B,) call each."""
    batch = (state[0] if isinstance(state, tuple) else state).shape[1]
    tokens = np.full(batch, bos)
    written = np.zeros((batch, max_length), dtype=np.int64)
    finished = np.zeros(batch, dtype=bool)
    for t in range(max_length):
        logits, state = decoder.step(tokens, state)
        tokens = np.argmax(logits, axis=1)
        written[:, t] = tokens
        finished |= tokens == eos
        if finished.all():
            break
    result = []
    for row in written:
        ends = np.flatnonzero(row == eos)
        result.append(row[: ends[0] if len(ends) else max_length].tolist())
    return result

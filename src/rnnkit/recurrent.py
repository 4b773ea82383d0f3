"""Recurrent layers with PyTorch's interface: `RNN`, `LSTM`, `GRU`.

A layer stacks `num_layers` cells, each optionally paired with a reverse-direction cell
(`bidirectional=True`); layer l reads the concatenated outputs of layer l-1, with inverted
dropout between layers in training mode:

    y^0 = x
    y^l = [h^l_fwd(y^{l-1} * m^{l-1}) ; h^l_rev(y^{l-1} * m^{l-1})]     (T, B, D*H)

where m^{l-1} is a dropout mask (1 before the first layer and in eval mode). Shapes follow
PyTorch: x is (T, B, I), or (B, T, I) with batch_first=True; the state is h of shape
(num_layers * D, B, H) for RNN and GRU and the tuple (h, c) for LSTM ((h, c, a) for the FGR
variant, whose previous gate activations are state too).

Parameters are attributes named exactly as PyTorch names them (`weight_ih_l0`,
`bias_hh_l1_reverse`, ...), so `state_dict()` loads into `torch.nn.LSTM/GRU/RNN` unchanged;
extra parameters of our own cells are `weight_peephole_l0` ((gates, H), rows in i, f, o order)
and `weight_gate_l0` (the FGR gate-to-gate weights).

`layer_norm=True` normalises each cell's input and recurrent projections (and the LSTM's cell
state; Ba, Kiros & Hinton 2016; equations in `rnnkit.cells.base` and `rnnkit.cells.lstm`), with
the gains `layer_norm_ih_weight_l0`, `layer_norm_hh_weight_l0` ((G*H,) each) and, for the LSTM,
`layer_norm_cell_weight_l0` and `layer_norm_cell_bias_l0` ((H,) each).

Variational dropout (Gal & Ghahramani 2016), Keras's names: `input_dropout` p_x and
`recurrent_dropout` p_h. In training mode, each forward call draws for every cell (layer and
direction) one mask per sequence from the layer's generator, m_x (B, I_l) and m_h (B, H), kept
at 0 or 1/(1 - p), and uses the same masks at every time step:

    cell input   x_t -> m_x * x_t            state read by W_hh   h_{t-1} -> m_h * h_{t-1}

(`rnnkit.timeloop` and `rnnkit.cells.base` for the backward). This is on top of PyTorch's
`dropout` between layers, whose masks are drawn anew at every step. Under truncated BPTT
(`rnnkit.tbptt`) every window is its own forward call, so it gets its own masks: a "sequence"
is a window (a part of one when k2 > k1). Eval mode draws nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .batchshare import random_for_batch
from .cells.base import Cell
from .cells.elman import ElmanCell
from .cells.gru import GRUCell
from .cells.lstm import LSTMCell
from .init import as_generator
from .module import Module, check_cache
from .timeloop import backward_sequence, forward_sequence

__all__ = ["RNN", "LSTM", "GRU", "RecurrentLayer", "SequenceCache"]


@dataclass
class SequenceCache:
    """What `forward` kept for `backward`: one cell cache per layer and direction, and the
    dropout mask applied to each layer's output (None where no dropout was applied)."""

    cells: list[list[object]]
    dropout_masks: list[np.ndarray | None]
    batch_first: bool
    owner: RecurrentLayer = field(repr=False)

    def internals(self) -> dict[str, dict[str, np.ndarray]]:
        """Every step's activations (hidden and cell states, gate values), keyed like
        "l0" / "l0_reverse", then by name ("h", "c", "i", "f", "g", "o" or "r", "z", "n");
        each array is (T, B, H) in the input's time order (batch-major if batch_first)."""
        result = {}
        for layer, row in enumerate(self.cells):
            for direction, cache in enumerate(row):
                cell = self.owner._cells[layer][direction]
                named = cell.internals(cache)
                if direction == 1:
                    named = {k: v[::-1] for k, v in named.items()}
                if self.batch_first:
                    named = {k: v.swapaxes(0, 1) for k, v in named.items()}
                result[f"l{layer}" + ("_reverse" if direction else "")] = named
        return result


class RecurrentLayer(Module):
    """Shared machinery of RNN, LSTM and GRU; subclasses name their cell class."""

    cell_class: type[Cell] = Cell

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 input_dropout: float = 0.0, recurrent_dropout: float = 0.0, layer_norm: bool = False,
                 dtype=np.float32, rng: np.random.Generator | int | None = 0, **cell_options):
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("dropout", dropout), ("input_dropout", input_dropout),
                            ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.input_dropout, self.recurrent_dropout = float(input_dropout), float(recurrent_dropout)
        self.layer_norm = bool(layer_norm)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dtype = dtype
        self._rng = as_generator(rng)
        self._cells: list[list[Cell]] = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            row = []
            for direction in range(self.num_directions):
                cell = self.cell_class(layer_input, self.hidden_size, bias=self.bias, dtype=dtype,
                                       rng=self._rng, layer_norm=self.layer_norm, **cell_options)
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                for name, param in cell.params().items():
                    setattr(self, name + suffix, param)
                row.append(cell)
            self._cells.append(row)

    # ---------------------------------------------------------------------------- state
    @property
    def state_names(self) -> tuple[str, ...]:
        return self._cells[0][0].state_names

    @property
    def layer_cells(self) -> list[list[Cell]]:
        """Each layer's cells: [forward] or [forward, reverse]."""
        return self._cells

    def state_components(self, state, batch_size: int) -> list[np.ndarray]:
        """A state in `forward`'s format, checked, as its components (each (L*D, B, width))."""
        return self._unpack(state, batch_size, "state")

    def initial_state(self, batch_size: int):
        """The zero state, in the format `forward` takes and returns."""
        return self._pack([np.zeros((self.num_layers * self.num_directions, batch_size, width), dtype=self.dtype)
                           for width in self._cells[0][0].state_widths()])

    def _pack(self, components: list[np.ndarray]):
        return components[0] if len(components) == 1 else tuple(components)

    def _unpack(self, state, batch_size: int, what: str) -> list[np.ndarray]:
        """Validate a state (or state gradient) and return its components as arrays."""
        widths = self._cells[0][0].state_widths()
        if len(widths) == 1 and not isinstance(state, (tuple, list)):
            components = [state]
        elif isinstance(state, (tuple, list)):
            components = list(state)
        else:
            components = []
        if len(components) != len(widths):
            raise ValueError(f"{what} must be a tuple of {len(widths)} parts ({', '.join(self.state_names)}), "
                             f"got {type(state).__name__} of length {len(state)}")
        result = []
        for name, width, value in zip(self.state_names, widths, components):
            value = np.asarray(value, dtype=self.dtype)
            expected = (self.num_layers * self.num_directions, batch_size, width)
            if value.shape != expected:
                raise ValueError(f"{what} part {name} has shape {value.shape}, expected {expected} "
                                 "(num_layers * num_directions, batch, width)")
            result.append(value)
        return result

    def _time_major(self, array: np.ndarray, what: str, width: int) -> np.ndarray:
        array = np.asarray(array, dtype=self.dtype)
        layout = "(batch, time, features)" if self.batch_first else "(time, batch, features)"
        if array.ndim != 3 or array.shape[2] != width:
            raise ValueError(f"{what} must be a 3-D array {layout} with {width} features, got shape {array.shape}")
        return array.swapaxes(0, 1) if self.batch_first else array

    # --------------------------------------------------------------------------- forward
    def forward(self, x: np.ndarray, state=None, mask: np.ndarray | None = None):
        """Run the whole stack over a sequence.

        mask: (T, B) (or (B, T) with batch_first), true on the real steps of sequences padded
        to one length; the state holds still on padded steps (`rnnkit.timeloop`), so the final
        state is each sequence's last real state, in both directions, and padding never reaches
        a gradient. Padded inputs are zeroed before use, so their values do not matter.

        Returns (y, final_state, cache): y is (T, B, D*H) (or (B, T, D*H) with batch_first) with
        the last layer's outputs; final_state is in the format of `initial_state`; the cache is
        what `backward` needs, and `cache.internals()` gives every step's gate activations."""
        x = self._time_major(x, "input", self.input_size)
        steps, batch = x.shape[:2]
        if steps == 0 or batch == 0:
            raise ValueError(f"input must have at least one time step and one sequence, got shape {x.shape}")
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            mask = mask.swapaxes(0, 1) if self.batch_first else mask
            if mask.shape != (steps, batch):
                raise ValueError(f"mask must cover (time, batch) = {(steps, batch)}, got shape {mask.shape}")
            x = np.array(x, self.dtype)  # a copy: the caller's array stays as it was
            x[~mask] = 0.0
        state0 = self._unpack(self.initial_state(batch) if state is None else state, batch, "initial state")
        finals = [np.empty_like(component) for component in state0]
        caches, dropout_masks = [], []
        layer_input = x
        for layer, row in enumerate(self._cells):
            outputs, row_caches = [], []
            for direction, cell in enumerate(row):
                index = layer * self.num_directions + direction
                start = tuple(component[index] for component in state0)
                input_mask = self._sequence_mask(self.input_dropout, (batch, cell.input_size))
                recurrent_mask = self._sequence_mask(self.recurrent_dropout, (batch, self.hidden_size))
                out, final, cache = forward_sequence(cell, layer_input, start, reverse=direction == 1, mask=mask,
                                                     input_mask=input_mask, recurrent_mask=recurrent_mask)
                for target, value in zip(finals, final):
                    target[index] = value
                outputs.append(out)
                row_caches.append(cache)
            y = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=2)
            keep_mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = 1.0 - self.dropout
                keep_mask = (random_for_batch(self._rng, y.shape) < keep).astype(self.dtype) / keep
                y = y * keep_mask
            caches.append(row_caches)
            dropout_masks.append(keep_mask)
            layer_input = y
        y = layer_input.swapaxes(0, 1) if self.batch_first else layer_input
        return y, self._pack(finals), SequenceCache(caches, dropout_masks, self.batch_first, self)

    __call__ = forward

    def _sequence_mask(self, p: float, shape: tuple[int, int]) -> np.ndarray | None:
        """A variational dropout mask, one row per sequence (0 or 1/keep), or None when off."""
        if not (self.training and p > 0):
            return None
        keep = 1.0 - p
        return (random_for_batch(self._rng, shape) < keep).astype(self.dtype) / keep

    def _drops_in_step(self) -> bool:
        """Whether a training-mode step draws dropout masks (then it is a one-step `forward`)."""
        return self.training and ((self.dropout > 0 and self.num_layers > 1)
                                  or self.input_dropout > 0 or self.recurrent_dropout > 0)

    def step(self, x: np.ndarray, state=None):
        """One time step for inference (sampling a token at a time), keeping nothing for
        backward: x (B, I) -> (y (B, D*H), state). The same numbers as `forward` on a one-step
        sequence; in training mode with any dropout it *is* that forward (masks drawn per call)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"step input must be a 2-D array (batch, features) with {self.input_size} "
                             f"features, got shape {x.shape}")
        if self._drops_in_step():
            y, state, _ = self.forward(x[:, None] if self.batch_first else x[None], state)
            return (y[:, 0] if self.batch_first else y[0]), state
        batch = x.shape[0]
        state0 = self._unpack(self.initial_state(batch) if state is None else state, batch, "initial state")
        finals = [np.empty_like(component) for component in state0]
        layer_input = x
        for layer, row in enumerate(self._cells):
            outputs = []
            for direction, cell in enumerate(row):  # a one-step sequence reads the same both ways
                index = layer * self.num_directions + direction
                new = cell.inference_step(layer_input, tuple(component[index] for component in state0))
                for target, value in zip(finals, new):
                    target[index] = value
                outputs.append(new[0])
            layer_input = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=1)
        return layer_input, self._pack(finals)

    # -------------------------------------------------------------------------- backward
    def backward(self, dy: np.ndarray | None, cache: SequenceCache, dstate=None, *, record=None):
        """Backpropagation through time for the whole stack.

        dy: dL/dy in y's shape (None if only the final state was used); dstate: dL/d(final
        state) in the state's format (None for zero). Adds every parameter's gradient into its
        `.grad` and returns (dL/dx in x's shape, dL/d(initial state) in the state's format).
        record: None, or record(key, position, d_state) called with every state gradient the
        loop carries, key "l0" / "l0_reverse" as in `internals()` (`rnnkit.timeloop`; this is
        what `rnnkit.gradient_flow` reads)."""
        check_cache(self, cache, SequenceCache, "y, state, cache = layer.forward(x)")
        first = cache.cells[0][0]
        steps, batch = first.x.shape[:2]
        width = self.hidden_size * self.num_directions
        d_layer = None if dy is None else self._time_major(dy, "output gradient", width)
        if d_layer is not None and d_layer.shape[:2] != (steps, batch):
            raise ValueError(f"output gradient covers {d_layer.shape[:2]} (time, batch) steps, "
                             f"the forward pass had {(steps, batch)}")
        zero = self.initial_state(batch)
        d_final = self._unpack(zero if dstate is None else dstate, batch, "final state gradient")
        d_initial = [np.zeros_like(component) for component in d_final]
        for layer in range(self.num_layers - 1, -1, -1):
            if d_layer is not None and cache.dropout_masks[layer] is not None:
                d_layer = d_layer * cache.dropout_masks[layer]
            d_input = None
            for direction, cell in enumerate(self._cells[layer]):
                index = layer * self.num_directions + direction
                columns = slice(direction * self.hidden_size, (direction + 1) * self.hidden_size)
                d_out = None if d_layer is None else d_layer[:, :, columns]
                d_end = tuple(component[index] for component in d_final)
                key = f"l{layer}" + ("_reverse" if direction else "")
                dx, d_start = backward_sequence(cell, d_out, d_end, cache.cells[layer][direction],
                                                reverse=direction == 1,
                                                record=None if record is None else partial(record, key))
                for target, value in zip(d_initial, d_start):
                    target[index] = value
                d_input = dx if d_input is None else d_input + dx
            d_layer = d_input
        dx = d_layer.swapaxes(0, 1) if self.batch_first else d_layer
        return dx, self._pack(d_initial)

    def extra_repr(self) -> str:
        extras = "".join(f", {name}={getattr(self, name)}" for name in ("input_dropout", "recurrent_dropout")
                         if getattr(self, name))
        extras += ", layer_norm=True" if self.layer_norm else ""
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}{extras}, dtype={self.dtype.name}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class RNN(RecurrentLayer):
    """Elman RNN: h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    nonlinearity: "tanh" (default), "relu", "sigmoid", "leaky_relu" (slope `negative_slope`,
    0.1 by default) or "elu". PyTorch's nn.RNN has tanh and relu."""

    cell_class = ElmanCell

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, negative_slope=0.1,
                 input_dropout=0.0, recurrent_dropout=0.0, layer_norm=False, dtype=np.float32, rng=0):
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         input_dropout=input_dropout, recurrent_dropout=recurrent_dropout, layer_norm=layer_norm,
                         dtype=dtype, rng=rng, nonlinearity=nonlinearity, negative_slope=negative_slope)


class LSTM(RecurrentLayer):
    """Long short-term memory (see `rnnkit.cells.lstm` for the equations).

    peephole: diagonal peephole weights (Gers & Schmidhuber). variant: one of Greff et al.'s
    "V" (vanilla: peephole LSTM), "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR";
    gate_activation / cell_activation: sigmoid / tanh by default. forget_bias: a constant added
    to the forget gate's bias at initialisation (on bias_ih; 0, the default, is PyTorch's
    initialisation; 1 is Gers et al.'s and Jozefowicz et al.'s advice; NFG refuses a non-zero
    one; `rnnkit.cells.lstm` for CIFG). chrono_max_lag: T_max of Tallec & Ollivier's chrono
    initialisation, b_f = log U(1, T_max - 1), b_i = -b_f (0, the default: off). layer_norm,
    input_dropout, recurrent_dropout: see the module docstring."""

    cell_class = LSTMCell

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, peephole=None, variant=None,
                 gate_activation="sigmoid", cell_activation="tanh", input_dropout=0.0, recurrent_dropout=0.0,
                 layer_norm=False, forget_bias=0.0, chrono_max_lag=0, dtype=np.float32, rng=0):
        self.variant, self.peephole, self.forget_bias = variant, peephole, forget_bias
        self.chrono_max_lag = chrono_max_lag
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         input_dropout=input_dropout, recurrent_dropout=recurrent_dropout, layer_norm=layer_norm,
                         dtype=dtype, rng=rng, peephole=peephole, variant=variant,
                         gate_activation=gate_activation, cell_activation=cell_activation, forget_bias=forget_bias,
                         chrono_max_lag=chrono_max_lag)


class GRU(RecurrentLayer):
    """Gated recurrent unit. reset_after=True (default) is PyTorch's/cuDNN's formula;
    reset_after=False the textbook one (Cho et al.), reset applied before the matmul; layer_norm
    needs reset_after=True (see `rnnkit.cells.gru`)."""

    cell_class = GRUCell

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, reset_after=True, input_dropout=0.0, recurrent_dropout=0.0,
                 layer_norm=False, dtype=np.float32, rng=0):
        self.reset_after = reset_after
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         input_dropout=input_dropout, recurrent_dropout=recurrent_dropout, layer_norm=layer_norm,
                         dtype=dtype, rng=rng, reset_after=reset_after)

"""The LSTM cell: PyTorch's standard cell, the peephole cell, and Greff et al.'s variants.

Forward, one step (gate blocks in PyTorch's order i, f, g, o; sigma the gate activation,
phi_in / phi_out the candidate and output activations, tanh by default):

    i_t = sigma(W_i x_t + R_i h_{t-1} + p_i * c_{t-1} + b_i)     input gate
    f_t = sigma(W_f x_t + R_f h_{t-1} + p_f * c_{t-1} + b_f)     forget gate
    g_t = phi_in(W_g x_t + R_g h_{t-1} + b_g)                    candidate (block input)
    c_t = f_t * c_{t-1} + i_t * g_t                              cell state
    o_t = sigma(W_o x_t + R_o h_{t-1} + p_o * c_t + b_o)         output gate
    h_t = o_t * phi_out(c_t)

The diagonal peepholes p (Gers & Schmidhuber 2000) exist only with `peephole=True`; note that
o reads the *new* cell state c_t. Greff et al. 2015 ("LSTM: A Search Space Odyssey") take the
peephole LSTM as their vanilla (V) and change one thing each:

    NIG   no input gate        i_t = 1
    NFG   no forget gate       f_t = 1
    NOG   no output gate       o_t = 1
    NIAF  no input activation  phi_in(x) = x
    NOAF  no output activation phi_out(x) = x
    NP    no peepholes
    CIFG  coupled gates        f_t = 1 - i_t
    FGR   full gate recurrence each of i, f, o also receives a_{t-1} = [i; f; o]_{t-1}
                               through its own weights: pre += W_gate a_{t-1}

A gate that is removed has no weight block at all (a constant 1 takes its place), so every
parameter the cell has is used. FGR makes the previous gates part of the state: (h, c, a).

Backward, one step, with dh_t, dc_t arriving from the output and from step t+1 (s_t =
phi_out(c_t); every derivative is read from a stored activation):

    do_t   = dh_t * s_t                      dz_o = do_t * sigma'(o_t)
    dc_t  += dh_t * o_t * phi_out'(s_t) + dz_o * p_o
    di_t   = dc_t * g_t                      dz_i = di_t * sigma'(i_t)
    df_t   = dc_t * c_{t-1}                  dz_f = df_t * sigma'(f_t)
    dg_t   = dc_t * i_t                      dz_g = dg_t * phi_in'(g_t)
    dc_{t-1} = dc_t * f_t + dz_i * p_i + dz_f * p_f
    dh_{t-1} = dz W_hh                       (dz = [dz_i, dz_f, dz_g, dz_o], the blocks present)

With CIFG, f = 1 - i adds -df_t to di_t; with FGR, the gradient arriving at a_t adds to di_t,
df_t and do_t, and da_{t-1} = dz_gates W_gate.

Forget-gate bias (`forget_bias=b`, Keras' unit_forget_bias; Gers et al. 2000, Jozefowicz et al.
2015 recommend b = 1): at initialisation the constant b is added to the f block of b_ih (b_hh
keeps PyTorch's draw; only the sum b_ih + b_hh enters the gates, so where it goes changes
nothing but the numbers a state dict shows). f_t then starts near sigma(b) instead of 1/2, and
the cell state's gradient, dc_{t-1} = dc_t * f_t + ..., fades like sigma(b)^lag instead of
2^-lag. b = 0 (the default) is PyTorch's initialisation, draw for draw. CIFG's forget gate is
1 - i_t = sigma(-z_i), so for it b is *subtracted* from the input gate's block of b_ih, which is
exactly "b added to the coupled forget gate's pre-activation" (and closes the input gate as
much). NFG has no forget gate to bias: a non-zero b is refused; so is one without biases.

Chrono initialisation (`chrono_max_lag=T_max`, Tallec & Ollivier 2018): instead of a constant,

    b_f = log(u),  u ~ U(1, T_max - 1) per unit,        b_i = -b_f

on b_ih's f and i blocks, b_hh's f and i blocks set to 0, so the sums are exactly these
(`rnnkit.init.chrono_bias`). The draw comes after all of the cell's other draws from its
generator (later layers' and the head's draws shift). A unit then forgets like f^t with
f = u / (1 + u): memories of 1 .. T_max steps. CIFG gets b_i = -b_f, i.e. its forget gate
1 - i = sigma(-z_i) has bias b_f; NIG only b_f; NFG, no biases, and a forget_bias as well are
refused. 0 (the default) is off.

Layer normalisation (`layer_norm=True`, Ba, Kiros & Hinton 2016): the two projections are
normalised as in every cell (`cells/base.py`), and the cell state before the output activation:

    pre_t = LN(W_ih x_t; gain_ih) + b_ih + LN(W_hh h_{t-1}; gain_hh) + b_hh   (then as above)
    s_t   = phi_out(LN(c_t; gain_cell, shift_cell))        h_t = o_t * s_t

c_t itself, which the forget gate carries and the output peephole reads, stays unnormalised.
Peephole terms (p * c, the raw cell state) and FGR's W_gate a_{t-1} (gates in (0, 1)) are added
to the normalised pre-activations unnormalised: Ba et al. have neither, and they are diagonal or
bounded. Backward, the only new step:

    dc_t += LN_cell'(dh_t * o_t * phi_out'(s_t))     (instead of dh_t * o_t * phi_out'(s_t))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..init import chrono_bias, uniform_fan
from ..module import Parameter
from ..ops import ACTIVATIONS, get_activation
from .base import Cell, State
from .layernorm import LayerNorm, statistics

VARIANTS = ("V", "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR")
#: The activations the compiled kernels know by name (`rnnkit.ops.ACTIVATIONS`' own objects).
COMPILED_ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "identity")


@dataclass(frozen=True)
class LSTMStructure:
    """Which parts an LSTM cell has. Built from the public options by `lstm_structure`."""

    input_gate: bool = True
    forget_gate: str = "learned"  # "learned", "none" (f = 1) or "coupled" (f = 1 - i)
    output_gate: bool = True
    input_activation: bool = True
    output_activation: bool = True
    peephole: bool = False
    full_gate_recurrence: bool = False

    def blocks(self) -> tuple[str, ...]:
        """The weight blocks, in PyTorch's order i, f, g, o."""
        present = {
            "i": self.input_gate,
            "f": self.forget_gate == "learned",
            "g": True,
            "o": self.output_gate,
        }
        return tuple(name for name, has in present.items() if has)

    def gates(self) -> tuple[str, ...]:
        """The learned sigmoid gates (what peepholes and FGR connect to), in order i, f, o."""
        return tuple(name for name in self.blocks() if name != "g")


def lstm_structure(variant: str | None, peephole: bool | None) -> LSTMStructure:
    """Map the public options to a structure.

    variant=None is PyTorch's LSTM (no peepholes unless peephole=True). A Greff variant starts
    from Greff's vanilla, which has peepholes; peephole=False removes them from any variant
    except NP, which already has none."""
    if variant is None:
        return LSTMStructure(peephole=bool(peephole))
    name = variant.upper()
    if name == "VANILLA":
        name = "V"
    if name not in VARIANTS:
        raise ValueError(f"unknown LSTM variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if name == "NP" and peephole:
        raise ValueError("variant NP means no peepholes; it cannot be combined with peephole=True")
    changes = {
        "V": {},
        "NIG": {"input_gate": False},
        "NFG": {"forget_gate": "none"},
        "NOG": {"output_gate": False},
        "NIAF": {"input_activation": False},
        "NOAF": {"output_activation": False},
        "NP": {"peephole": False},
        "CIFG": {"forget_gate": "coupled"},
        "FGR": {"full_gate_recurrence": True},
    }[name]
    options = {"peephole": True if peephole is None else peephole, **changes}
    return LSTMStructure(**options)


def check_forget_bias(forget_bias, structure: LSTMStructure, bias: bool) -> float:
    """forget_bias as a float, or a ValueError when the cell has nothing it could go into."""
    try:
        value = float(forget_bias)
    except (TypeError, ValueError):
        raise ValueError(f"forget_bias must be a number, got {forget_bias!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"forget_bias must be finite, got {forget_bias!r}")
    if value and structure.forget_gate == "none":
        raise ValueError(f"forget_bias={value:g} needs a forget gate; variant NFG has none (f = 1), "
                         "so leave forget_bias at 0")
    if value and not bias:
        raise ValueError(f"forget_bias={value:g} needs the gate biases; it cannot be combined with bias=False")
    return value


def check_chrono(max_lag, structure: LSTMStructure, bias: bool, forget_bias: float) -> int:
    """chrono_max_lag as an int (0: off), or a ValueError when it cannot apply."""
    if not max_lag:
        return 0
    if not isinstance(max_lag, (int, np.integer)) or max_lag < 3:
        raise ValueError(f"chrono_max_lag (T_max) must be 0 (off) or an integer >= 3, got {max_lag!r}")
    if structure.forget_gate == "none" or not bias or forget_bias:
        raise ValueError("chrono_max_lag sets the forget-gate biases; it needs a forget gate (not NFG), the "
                         "gate biases (bias=True) and forget_bias=0")
    return int(max_lag)


class LSTMCell(Cell):
    shares_preactivation = True

    def __init__(self, input_size, hidden_size, *, bias, dtype, rng, peephole=None, variant=None,
                 gate_activation="sigmoid", cell_activation="tanh", layer_norm=False, forget_bias=0.0,
                 chrono_max_lag=0):
        self.structure = s = lstm_structure(variant, peephole)
        forget_bias = check_forget_bias(forget_bias, s, bias)
        chrono_max_lag = check_chrono(chrono_max_lag, s, bias, forget_bias)
        self.block_names = s.blocks()
        self.num_blocks = len(self.block_names)
        self.gate_names = s.gates()
        self.gate_activation = get_activation(gate_activation)
        self.input_activation = get_activation(cell_activation if s.input_activation else "identity")
        self.output_activation = get_activation(cell_activation if s.output_activation else "identity")
        self.state_names = ("h", "c", "a") if s.full_gate_recurrence else ("h", "c")
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, rng=rng, layer_norm=layer_norm)

        H = hidden_size
        self.block = {name: slice(k * H, (k + 1) * H) for k, name in enumerate(self.block_names)}
        if forget_bias:  # module docstring: on b_ih; CIFG's forget gate is 1 - i
            name, sign = ("i", -1.0) if s.forget_gate == "coupled" else ("f", 1.0)
            self.bias_ih.value[self.block[name]] += sign * forget_bias
        # Columns of the gate blocks inside the G*H pre-activation (i, f, o; g excluded).
        self.gate_columns = np.concatenate([np.arange(H * k, H * (k + 1))
                                            for k, name in enumerate(self.block_names) if name != "g"])
        gates = len(self.gate_names)
        self.weight_peephole = (
            Parameter(uniform_fan(rng, (gates, H), H, dtype)) if s.peephole else None
        )
        self.weight_gate = (
            Parameter(uniform_fan(rng, (gates * H, gates * H), H, dtype)) if s.full_gate_recurrence else None
        )
        # The cell state's normalisation has its own shift: no bias follows it.
        self.norm_cell = LayerNorm(H, dtype, shift=bias) if self.layer_norm else None
        if chrono_max_lag:  # module docstring; i is CIFG's coupled forget gate too
            forget = chrono_bias(rng, H, chrono_max_lag, dtype)
            for name, value in (("f", forget), ("i", -forget)):
                if name in self.block:
                    self.bias_ih.value[self.block[name]] = value
                    self.bias_hh.value[self.block[name]] = 0.0

    def extra_param_names(self):
        return ("weight_peephole", "weight_gate")

    def layer_norm_params(self):
        named = super().layer_norm_params()
        if self.layer_norm:
            named["layer_norm_cell_weight"] = self.norm_cell.weight
            if self.norm_cell.bias is not None:
                named["layer_norm_cell_bias"] = self.norm_cell.bias
        return named

    def has_fused_form(self):
        """Compiled: PyTorch's LSTM (`kernels/lstm.py`), and every other structure (FGR included) with
        activations the kernels know by name, layer-normalised or not (`kernels/lstm_variants.py`).
        An activation counts when it equals the library's own of that name (the same functions: a
        copy made by pickling counts, a custom function under a known name does not)."""
        activations = (self.gate_activation, self.input_activation, self.output_activation)
        return all(a.name in COMPILED_ACTIVATIONS and ACTIVATIONS[a.name] == a for a in activations)

    @property
    def kernel_name(self):
        """PyTorch's LSTM has a loop of its own, the fastest; every other structure shares one."""
        standard = (self.structure == LSTMStructure() and self.gate_activation.name == "sigmoid"
                    and self.input_activation.name == "tanh" and self.output_activation.name == "tanh"
                    and not self.layer_norm)
        return "lstm" if standard else "lstm_variants"

    def state_widths(self):
        widths = (self.hidden_size, self.hidden_size)
        if self.structure.full_gate_recurrence:
            widths += (len(self.gate_names) * self.hidden_size,)
        return widths

    def peephole(self, gate: str) -> np.ndarray:
        return self.weight_peephole.value[self.gate_names.index(gate)]

    def new_cache(self, steps, batch, state0):
        cache = super().new_cache(steps, batch, state0)
        H = self.hidden_size
        cache.c = np.empty((steps + 1, batch, H), dtype=self.dtype)
        cache.c[0] = state0[1]
        cache.act = np.empty((steps, batch, self.num_blocks * H), dtype=self.dtype)
        cache.s = np.empty((steps, batch, H), dtype=self.dtype)  # phi_out(c_t)
        if self.structure.full_gate_recurrence:
            cache.a = np.empty((steps + 1, batch, len(self.gate_names) * H), dtype=self.dtype)
            cache.a[0] = state0[2]
        if self.layer_norm:
            cache.ln_cell = statistics((steps, batch, H), self.dtype)
        return cache

    def gate_values(self, act: np.ndarray):
        """(i, f, g, o) read from one step's stored activations. A removed gate is the scalar
        1.0 and a coupled forget gate is 1 - i, so the equations below hold for every variant."""
        block = self.block
        i = act[:, block["i"]] if "i" in block else 1.0
        if self.structure.forget_gate == "learned":
            f = act[:, block["f"]]
        elif self.structure.forget_gate == "coupled":
            f = 1.0 - i
        else:
            f = 1.0
        o = act[:, block["o"]] if "o" in block else 1.0
        return i, f, act[:, block["g"]], o

    # ---------------------------------------------------------------------------- forward
    def step(self, t: int, input_projection: np.ndarray, state: State, cache) -> State:
        h_prev, c_prev = state[0], state[1]
        pre = self.recurrent_projection(t, h_prev, cache)
        pre += input_projection
        if self.weight_gate is not None:
            pre[:, self.gate_columns] += state[2] @ self.weight_gate.value.T
        act = cache.act[t]

        # The gates that read c_{t-1} (i and f), then the candidate.
        for name in ("i", "f"):
            if name in self.block:
                if self.weight_peephole is not None:
                    pre[:, self.block[name]] += self.peephole(name) * c_prev
                act[:, self.block[name]] = self.gate_activation(pre[:, self.block[name]])
        act[:, self.block["g"]] = self.input_activation(pre[:, self.block["g"]])
        i, f, g, _ = self.gate_values(act)

        c = cache.c[t + 1]
        np.multiply(f, c_prev, out=c)
        c += i * g

        # The output gate reads the new cell state c_t.
        if "o" in self.block:
            if self.weight_peephole is not None:
                pre[:, self.block["o"]] += self.peephole("o") * c
            act[:, self.block["o"]] = self.gate_activation(pre[:, self.block["o"]])
        o = self.gate_values(act)[3]

        s = cache.s[t]
        if self.layer_norm:
            s[...] = self.output_activation(self.norm_cell.forward(c, cache.ln_cell[0][t], cache.ln_cell[1][t]))
        else:
            s[...] = self.output_activation(c)
        h = cache.h[t + 1]
        np.multiply(o, s, out=h)
        if self.weight_gate is None:
            return (h, c)
        a = cache.a[t + 1]
        a[...] = act[:, self.gate_columns]
        return (h, c, a)

    # --------------------------------------------------------------------------- backward
    def step_backward(self, t, dstate, cache, d_input, d_recurrent):
        dh, dc = dstate[0], dstate[1]
        act, s, c_prev = cache.act[t], cache.s[t], cache.c[t]
        i, f, g, o = self.gate_values(act)
        dz = d_input  # (B, G*H) gradient w.r.t. the pre-activations, written block by block
        block = self.block
        # Gradient arriving at each gate's activation from the next step (FGR), by gate name.
        d_next = self._split_gates(dstate[2]) if self.weight_gate is not None else {}

        d_output_activation = dh * o * self.output_activation.grad_from_output(s)
        if self.layer_norm:
            d_output_activation = self.norm_cell.backward(d_output_activation, cache.ln_cell[0][t],
                                                          cache.ln_cell[1][t])
        dc = dc + d_output_activation
        if "o" in block:
            dz_o = dz[:, block["o"]]
            np.multiply(dh, s, out=dz_o)
            if "o" in d_next:
                dz_o += d_next["o"]
            dz_o *= self.gate_activation.grad_from_output(o)
            if self.weight_peephole is not None:
                dc += dz_o * self.peephole("o")

        d_gate = {"i": dc * g, "f": dc * c_prev}
        if self.structure.forget_gate == "coupled":
            d_gate["i"] -= d_gate["f"]  # f = 1 - i
        dc_prev = dc * f
        for name in ("i", "f"):
            if name in block:
                dz_gate = dz[:, block[name]]
                np.add(d_gate[name], d_next.get(name, 0.0), out=dz_gate)
                dz_gate *= self.gate_activation.grad_from_output(act[:, block[name]])
                if self.weight_peephole is not None:
                    dc_prev += dz_gate * self.peephole(name)
        np.multiply(dc * i, self.input_activation.grad_from_output(g), out=dz[:, block["g"]])

        dh_prev = self.recurrent_backward(t, dz, cache)
        if self.weight_gate is None:
            return (dh_prev, dc_prev)
        return (dh_prev, dc_prev, dz[:, self.gate_columns] @ self.weight_gate.value)

    def _split_gates(self, stacked: np.ndarray) -> dict[str, np.ndarray]:
        H = self.hidden_size
        return {name: stacked[:, k * H:(k + 1) * H] for k, name in enumerate(self.gate_names)}

    def accumulate_grads(self, cache, x, d_input, d_recurrent, d_peephole=None):
        """The base's gradients, the peepholes' and W_gate's; d_peephole: the peephole gradient
        already summed (the compiled kernel sums it over its feature-major arrays)."""
        super().accumulate_grads(cache, x, d_input, d_recurrent)
        if d_peephole is not None:
            self.weight_peephole.grad += d_peephole
        elif self.weight_peephole is not None:
            # i and f read c_{t-1}; o reads c_t.
            for k, name in enumerate(self.gate_names):
                c_read = cache.c[1:] if name == "o" else cache.c[:-1]
                self.weight_peephole.grad[k] += np.einsum("tbh,tbh->h", d_input[:, :, self.block[name]], c_read)
        if self.weight_gate is not None:
            width = len(self.gate_names) * self.hidden_size
            dz_gates = d_input[:, :, self.gate_columns].reshape(-1, width)
            self.weight_gate.grad += dz_gates.T @ cache.a[:-1].reshape(-1, width)

    def internals(self, cache):
        i, f, g, o = self.gate_values(cache.act.reshape(-1, cache.act.shape[-1]))
        shape = cache.c[1:].shape  # not cache.s: the compiled cache makes that on first use
        named = {"h": cache.h[1:], "c": cache.c[1:]}
        for name, value in zip("ifgo", (i, f, g, o)):
            if not np.isscalar(value):
                named[name] = value.reshape(shape)
        return named

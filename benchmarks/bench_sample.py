"""Sampling speed: one character at a time, rnnkit against PyTorch, in one process.

A character model as a language model samples from it: embedding (V = 96, E = 64) -> 2-layer
LSTM (H = 512) -> Linear head -> softmax at temperature 0.8 -> draw the next character, B = 1,
2,000 characters per run. rnnkit runs twice: `SequenceNetwork.sample` (what `rnnkit lm sample`
uses: for this network, every character drawn in one compiled call), and a Python loop around
`SequenceNetwork.step` in eval mode (the cache-free inference step, one call per character, as
a user's own loop would be); PyTorch runs its modules under `torch.no_grad()`, once as it comes (its LSTM
then takes the oneDNN path, aten::mkldnn_rnn_layer) and once with oneDNN switched off
(`torch.backends.mkldnn.flags(enabled=False)`), which is faster for one step at a time. The
ratio is taken against the faster of the two. Both sides start from the same weights; the
script checks that their first logits agree.

Sampling at B = 1 is bound by memory: every character reads every weight matrix once (about
13 MB in float32). The script prints the rate at which each library reads them (weights per
character x characters per second) beside the machine's own rate, measured in the same run as
NumPy's matrix-vector product over a matrix of the same size (its median GB/s), and the share
of that ceiling each library reaches; then the time of NumPy's products over the step's own
matrices and nothing else, the floor for any sampler on this BLAS, and the ratio such a sampler
would reach.

    python benchmarks/bench_sample.py [--quick]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_sample.py
"""

from __future__ import annotations

import argparse

import _common
import numpy as np

VOCAB, EMBED, HIDDEN, LAYERS, TEMPERATURE = 96, 64, 512, 2, 0.8


def build_rnnkit():
    from rnnkit.network import NetworkConfig, SequenceNetwork

    config = NetworkConfig(input_size=VOCAB, output_size=VOCAB, cell="lstm", hidden_size=HIDDEN,
                           num_layers=LAYERS, input_kind="embedding", embedding_size=EMBED)
    return SequenceNetwork(config, rng=0).eval()


def rnnkit_library_sampler(net, chars: int):
    def run():
        net.sample(0, chars, np.random.default_rng(0), temperature=TEMPERATURE)
    return run


def rnnkit_sampler(net, chars: int):
    rng = np.random.default_rng(0)

    def run():
        token, state = np.array([0]), None
        for _ in range(chars):
            logits, state = net.step(token, state)
            z = logits[0] / TEMPERATURE
            p = np.exp(z - z.max())
            cdf = np.cumsum(p)
            token = np.array([min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), VOCAB - 1)])
    return run


def build_torch(net):
    import torch

    embedding = torch.nn.Embedding(VOCAB, EMBED)
    lstm = torch.nn.LSTM(EMBED, HIDDEN, LAYERS)
    head = torch.nn.Linear(HIDDEN, VOCAB)
    ours = net.state_dict()
    embedding.load_state_dict({"weight": torch.from_numpy(ours["embedding.weight"])})
    lstm.load_state_dict({k[len("rnn."):]: torch.from_numpy(v) for k, v in ours.items() if k.startswith("rnn.")})
    head.load_state_dict({k[len("head."):]: torch.from_numpy(v) for k, v in ours.items() if k.startswith("head.")})
    for module in (embedding, lstm, head):
        module.eval()
    return embedding, lstm, head


def torch_sampler(modules, chars: int, onednn: bool):
    import torch

    embedding, lstm, head = modules
    generator = torch.Generator().manual_seed(0)

    def run():
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=onednn):
            token, state = torch.zeros((1, 1), dtype=torch.long), None
            for _ in range(chars):
                out, state = lstm(embedding(token), state)
                probs = torch.softmax(head(out[0, 0]) / TEMPERATURE, dim=-1)
                token = torch.multinomial(probs, 1, generator=generator).view(1, 1)
    return run


def check_agreement(net, modules) -> float:
    import torch

    embedding, lstm, head = modules
    tokens = [3, 17, 42, 5, 60]
    state_ours, state_torch, worst = None, None, 0.0
    with torch.no_grad():
        for token in tokens:
            ours, state_ours = net.step(np.array([token]), state_ours)
            out, state_torch = lstm(embedding(torch.tensor([[token]])), state_torch)
            worst = max(worst, float(np.abs(ours[0] - head(out[0, 0]).numpy()).max()))
    return worst


def weight_bytes(net) -> int:
    """Bytes of the weights one step reads: every recurrent and head matrix and bias, and one
    embedding row (the rest of the embedding table is not touched)."""
    total = 0
    for name, value in net.state_dict().items():
        total += value.nbytes if not name.startswith("embedding.") else value.nbytes // value.shape[0]
    return total


def matrix_vector_floor(net, repeats: int = 200) -> float:
    """Seconds per character of NumPy's matrix-vector products over the step's own weight
    matrices in turn (each recurrent and head matrix once, as one character reads them), with
    nothing else: what any sampler built on this BLAS needs at least. Median of `repeats`."""
    import time

    matrices = [value for name, value in net.state_dict().items()
                if value.ndim == 2 and not name.startswith("embedding.")]
    vectors = [np.ones(m.shape[1], m.dtype) for m in matrices]
    times = []
    for _ in range(repeats + 5):
        start = time.perf_counter()
        for matrix, vector in zip(matrices, vectors):
            matrix @ vector
        times.append(time.perf_counter() - start)
    return float(np.median(times[5:]))


def read_bandwidth(nbytes: int, repeats: int = 30) -> float:
    """The machine's read rate in GB/s: the median of NumPy's matrix-vector product over a
    float32 matrix of `nbytes` (all cores NumPy's BLAS uses)."""
    import time

    rows = max(1, nbytes // (4 * 512))
    matrix = np.random.default_rng(0).standard_normal((rows, 512)).astype(np.float32)
    vector = np.ones(512, np.float32)
    matrix @ vector
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matrix @ vector
        times.append(time.perf_counter() - start)
    return matrix.nbytes / float(np.median(times)) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 characters, 2 repeats")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per library")
    parser.add_argument("--chars", type=int, default=2000, help="characters per run")
    args = parser.parse_args()
    chars, repeats = (500, 2) if args.quick else (args.chars, args.repeats)

    print("\n".join(_common.environment_report()))
    net = build_rnnkit()
    modules = build_torch(net)
    print(f"largest |logit difference| rnnkit vs torch over 5 steps: {check_agreement(net, modules):.1e}")
    for onednn in (True, False):
        ops = _common.torch_ops(lambda onednn=onednn: torch_sampler(modules, 1, onednn)())
        print(f"torch, oneDNN {'on ' if onednn else 'off'}: aten::mkldnn_rnn_layer "
              f"{'called' if 'aten::mkldnn_rnn_layer' in ops else 'not called'}")
    runners = {"rnnkit (sample)": rnnkit_library_sampler(net, chars), "rnnkit (step loop)": rnnkit_sampler(net, chars),
               "torch (oneDNN on)": torch_sampler(modules, chars, True),
               "torch (oneDNN off)": torch_sampler(modules, chars, False)}
    seconds = _common.interleaved(runners, repeats, min_block_s=0.0)
    print(f"\nsampling {chars} characters, B=1, embedding {EMBED} -> {LAYERS}-layer LSTM H={HIDDEN} -> "
          f"Linear {VOCAB} -> softmax, median of {repeats}:")
    best_torch = min(seconds["torch (oneDNN on)"], seconds["torch (oneDNN off)"])
    rows = [[name, f"{chars / s:,.0f}", f"{1e6 * s / chars:.0f}", f"{best_torch / s:.2f}"]
            for name, s in seconds.items()]
    print(_common.table(["library", "chars/s", "us/char", "vs best torch"], rows))
    print(f"ratio rnnkit / best PyTorch: {best_torch / seconds['rnnkit (sample)']:.2f}x with SequenceNetwork.sample, "
          f"{best_torch / seconds['rnnkit (step loop)']:.2f}x with a Python loop around SequenceNetwork.step")
    per_char = weight_bytes(net)
    ceiling = read_bandwidth(per_char)
    print(f"\nweights read per character: {per_char / 1e6:.1f} MB; this machine's read rate (NumPy matrix-vector "
          f"product over {per_char / 1e6:.1f} MB, median): {ceiling:.1f} GB/s")
    for name, s in seconds.items():
        rate = per_char * chars / s / 1e9
        print(f"  {name:20s} {rate:5.1f} GB/s of weights, {100 * rate / ceiling:3.0f} % of that rate")
    floor = matrix_vector_floor(net)
    print(f"NumPy's matrix-vector products over the same matrices, nothing else: {1e6 * floor:.0f} us/char, "
          f"{100 * floor * chars / seconds['rnnkit (sample)']:.0f} % of SequenceNetwork.sample's time; a sampler at "
          f"that floor would be "
          f"{best_torch / chars / floor:.2f}x the best PyTorch")


if __name__ == "__main__":
    main()

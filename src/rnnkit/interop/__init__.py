"""Moving models to other frameworks and back.

- `rnnkit.interop.onnx`: a recurrent layer or a whole `SequenceNetwork` as one ONNX graph of
  the standard `RNN` / `LSTM` / `GRU` operators (needs the `rnnkit[onnx]` extra).
- `rnnkit.interop.torch`: a `SequenceNetwork` as a PyTorch state dict (safetensors, written
  without torch) and a PyTorch state dict back into an rnnkit checkpoint.

Neither module is imported here, so `import rnnkit` never needs onnx or torch.
"""

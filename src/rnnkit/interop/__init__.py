"""Moving models to other frameworks and back.

- `rnnkit.interop.onnx`: a recurrent layer, a whole `SequenceNetwork`, or a classifier or
  regressor as one ONNX graph of the standard `RNN` / `LSTM` / `GRU` operators
  (`onnx_recurrent` builds the stack; needs the `rnnkit[onnx]` extra).
- `rnnkit.interop.torch`: a `SequenceNetwork`, classifier or regressor as a PyTorch state dict
  (safetensors, written without torch) and a PyTorch state dict back into an rnnkit checkpoint.

Neither module is imported here, so `import rnnkit` never needs onnx or torch.
"""

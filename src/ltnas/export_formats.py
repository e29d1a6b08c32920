"""Export formats and the default check tolerance: read by the CLI's parser (without torch) and by export.py."""

FORMATS = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
DEFAULT_TOLERANCE = 1e-3  # on logits, max absolute difference; float32 op-order noise is ~1e-6

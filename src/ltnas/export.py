"""Export a run's trained network to ONNX or TorchScript, checked against PyTorch on real images.

Both formats take the normalised batch (`Preprocess`, N×C×S×S float32, any N) and give the logits.
TorchScript is made by `torch.jit.trace`, not `torch.jit.script`: in eval mode the network has no
data-dependent control flow (drop-path and the auxiliary head act in training only), so the trace
records the whole computation. ONNX uses torch's TorchScript-based exporter (opset 17) and is
checked with onnxruntime; both are the optional extra `pip install "ltnas[export]"`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ltnas.atomic import atomic_file
from ltnas.errors import LtnasError
from ltnas.export_formats import DEFAULT_TOLERANCE, FORMATS
from ltnas.model_io import LoadedModel, load_model

CHECK_IMAGES = 16  # test images the export is checked on when no --images are given


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    checked_images: int
    tolerance: float


def export_model(run_dir: str | Path, format: str, out: str | Path | None = None,
                 images: Sequence[str | Path] | None = None, tolerance: float = DEFAULT_TOLERANCE) -> ExportResult:
    """Write the run's network in `format`; its logits on real images (`images`, else the run's test
    images) must match PyTorch's within `tolerance` (max absolute difference), else LtnasError."""
    if format not in FORMATS:
        raise LtnasError(f"unknown export format '{format}'; choose one of {', '.join(FORMATS)}")
    if format == "onnx":
        _require_onnx()
    loaded = load_model(run_dir, "cpu")
    path = Path(out) if out else Path(run_dir) / "export" / FORMATS[format]
    if path.is_dir():
        raise LtnasError(f"--out {path} is a folder; give a file name")
    if out is None:
        path.parent.mkdir(exist_ok=True)
    elif not path.parent.is_dir():
        raise LtnasError(f"cannot write {path}: folder {path.parent} does not exist; create it or choose another --out")
    batch = check_batch(loaded, run_dir, images)
    # traced with a batch of a different size from the check's, so a baked-in batch size would show
    example = batch[:1] if len(batch) > 1 else torch.cat([batch, batch])
    with torch.no_grad():
        expected = loaded.model(batch).numpy()
        if format == "onnx":
            data = _onnx_bytes(loaded.model, example)
            got = _run_onnx(data, batch)
        else:
            data, got = _torchscript_bytes(loaded.model, example, batch)
    diff = float(np.abs(got - expected).max())
    if not diff <= tolerance:
        raise LtnasError(f"the {format} model's logits differ from PyTorch's by up to {diff:.3g} on {len(batch)} "
                         f"images, above the tolerance {tolerance:g}; nothing was written (report this as a bug)")
    with atomic_file(path, "wb") as handle:
        handle.write(data)
    return ExportResult(path, format, diff, len(batch), tolerance)


def check_batch(loaded: LoadedModel, run_dir: str | Path, images: Sequence[str | Path] | None) -> torch.Tensor:
    """The normalised images the export is checked on: the given files, else the first CHECK_IMAGES
    test images of the run's data (rebuilt from its config)."""
    if images:
        from ltnas.predict import collect_images

        return loaded.preprocess(collect_images(images)[:64])
    from ltnas.data import build_dataset
    from ltnas.runs import RunFolder

    path = Path(run_dir)
    if not (path / "config.yaml").is_file():
        raise LtnasError(f"{path} is not a run folder, so there are no test images to check the export on; pass "
                         "--images IMAGE|FOLDER")
    config = RunFolder.open(path).config()
    try:
        dataset = build_dataset(config.data, seed=config.seed)
    except LtnasError as exc:
        raise LtnasError(f"cannot load the run's test images to check the export ({exc}); pass --images "
                         "IMAGE|FOLDER") from None
    return loaded.preprocess.normalise(dataset.test.images[:CHECK_IMAGES])


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise LtnasError('ONNX export needs onnx and onnxruntime; install them with pip install "ltnas[export]"') \
            from None


def _onnx_bytes(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on deprecated APIs are not the user's concern
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=17, input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    return buffer.getvalue()


def _run_onnx(data: bytes, batch: torch.Tensor) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"images": batch.numpy()})[0]


def _torchscript_bytes(model: torch.nn.Module, example: torch.Tensor, batch: torch.Tensor) -> tuple[bytes, np.ndarray]:
    """The traced module's file, and the logits of that file loaded back (what users will run)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        traced = torch.jit.trace(model, example)
        torch.jit.save(traced, buffer)
        reloaded = torch.jit.load(io.BytesIO(buffer.getvalue()))
    return buffer.getvalue(), reloaded(batch).numpy()


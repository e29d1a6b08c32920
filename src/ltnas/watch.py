"""Optional TensorBoard logging of a run (`--log tensorboard`, `ltnas.run(..., log="tensorboard")`).

Written with torch's own `torch.utils.tensorboard.SummaryWriter` into RUN/tensorboard/ (view with
`tensorboard --logdir RUN/tensorboard`): every number of each epoch's metrics row as a scalar
`<stage>/<key>` (step = epoch), the relaxed architecture weights of a search — softmax(α) for
DARTS, σ(α) for FairDARTS and SSF-NAS — as histograms `<stage>/weights_<cell>`, and, when the run's
report has drawn it, the per-class accuracy figure. The `tensorboard` package is an optional extra
(`pip install "ltnas[tensorboard]"`), imported only when asked for.

The shared epoch loop calls `log_epoch` after every epoch; it does nothing unless a command opened
`logging_to(run_dir)` around the run. Only the process that writes the run folder logs.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ltnas.errors import LtnasError

LOGGERS = ("tensorboard",)
_writer = None  # the SummaryWriter of the run being logged, if any


def check_logger(name: str | None) -> None:
    """Fail early, in one line, on an unknown logger or a missing optional package."""
    if name is None:
        return
    if name not in LOGGERS:
        raise LtnasError(f"unknown --log {name!r}; the one logger is tensorboard")
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
    except ImportError:
        raise LtnasError('--log tensorboard needs the tensorboard package; install it with '
                         'pip install "ltnas[tensorboard]"') from None


@contextmanager
def logging_to(run_dir: str | Path, name: str | None) -> Iterator[None]:
    """Log the epochs run inside this block to RUN/tensorboard/ (nothing when `name` is None)."""
    global _writer
    if name is None:
        yield
        return
    check_logger(name)
    from torch.utils.tensorboard import SummaryWriter

    from ltnas import distributed

    if not distributed.is_main():
        yield
        return
    previous, _writer = _writer, SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
    try:
        yield
        _log_figure(Path(run_dir))
    finally:
        _writer.close()
        _writer = previous


def log_epoch(task: Any, folder: Path, row: dict[str, Any]) -> None:
    """Scalars of a metrics row and, for a search, histograms of its relaxed weights."""
    if _writer is None:
        return
    stage, step = task.name, int(row.get("epoch", 0))
    for key, value in row.items():
        if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
            _writer.add_scalar(f"{stage}/{key}", value, step)
    network = getattr(task, "network", None)
    relaxed = getattr(network, "relaxed_weights", None)
    if callable(relaxed):
        for cell, weights in relaxed().items():
            _writer.add_histogram(f"{stage}/weights_{cell}", weights.detach().float().cpu(), step)
    _writer.flush()


def _log_figure(run_dir: Path) -> None:
    figure = run_dir / "plots" / "per_class.png"
    if not figure.is_file():
        return
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(figure).convert("RGB"))
    _writer.add_image("evaluation/per_class", image, dataformats="HWC")

"""Shared fixtures: a tiny synthetic run that exercises the whole pipeline in seconds on a CPU."""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import json
import os
import sys
from pathlib import Path

import pytest
import torch
import yaml

# Test tensors are tiny: a second intra-op thread buys nothing there, and when another process
# holds the other core, OpenMP barriers turn microsecond ops into milliseconds.
torch.set_num_threads(1)
# The same for the `ltnas` processes tests start (the thread policy reads OMP_NUM_THREADS), and
# comparisons run their members in this process unless a test asks for --jobs.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["LTNAS_JOBS"] = "1"
# Reports draw every figure at 10 dpi without the layout pass, ticks or heatmap numbers (src/ltnas/plot_settings.py):
# a quarter of a full-quality report's time, which was most of a tiny run's. test_report.py renders at full quality.
os.environ["LTNAS_PLOTS"] = "draft"
# The processes tests start (`ltnas` commands, comparison workers, benchmark scripts' children) import ltnas from its
# source: with PYTHONDONTWRITEBYTECODE set, as on this project's machines, none of them could keep the compiled
# modules, and each compiled ltnas's ~70 modules again (~0.45 CPU s a process). The suite lets them, and itself,
# share src/ltnas/__pycache__ (git-ignored; Python writes each file under a temporary name, then renames it).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


# The xdist grouping (tests/xdist_groups.py: shared fixtures stay on one worker), imported so that pytest finds its hooks.
from xdist_groups import pytest_collection_finish, pytest_collection_modifyitems  # noqa: E402,F401


# Python's full garbage collections walk every tracked object, and after torch, matplotlib and ltnas are imported
# that is ~400,000 objects: each took 0.2-0.3 CPU s, about once per tiny run (a tenth of a warm one). Freezing what is
# alive once the imports are done (gc.freeze: the collector skips those objects from then on) leaves the tests'
# own objects to walk. Frozen again whenever a test has imported more modules (matplotlib, the first report).
_frozen_at_modules = 0


def _freeze_imported_objects() -> None:
    global _frozen_at_modules
    if len(sys.modules) > _frozen_at_modules + 20:
        gc.collect()
        gc.freeze()
        _frozen_at_modules = len(sys.modules)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session) -> None:
    _freeze_imported_objects()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item) -> None:
    _freeze_imported_objects()


TINY_RUN = {
    "name": "tiny",
    "seed": 0,
    "device": "cpu",
    "progress": False,
    "data": {
        "source": "synthetic", "num_classes": 4, "channels": 3, "image_size": 8,
        "n_max": 40, "test_per_class": 10, "profile": "exp", "ratio": 10,
        "augment": {"crop_padding": 1, "flip": True, "cutout": 0},
    },
    "search": {
        "cell": {"init_channels": 4, "layers": 3}, "epochs": 2, "batch_size": 16, "sgd": {"lr": 0.05},
        "arch_lr": 0.003,
        "augment": {"crop_padding": 1, "flip": True, "cutout": 0},
    },
    "train": {
        "cell": {"init_channels": 4, "layers": 3}, "epochs": 2, "batch_size": 16, "sgd": {"lr": 0.05},
        "auxiliary": True,
        "drop_path": 0.1, "augment": {"crop_padding": 1, "flip": True, "cutout": 2},
    },
}


@pytest.fixture
def tiny_run() -> dict:
    """The tiny run config as a dict (a fresh copy per test)."""
    return copy.deepcopy(TINY_RUN)


@pytest.fixture
def tiny_config_file(tmp_path: Path, tiny_run: dict) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_run, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory) -> Path:
    """The tiny run config as a YAML file shared by a test module's runs."""
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_RUN, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory) -> tuple[Path, int, str, dict]:
    """`ltnas run TINY --out DIR` (2 search and 2 retrain epochs, written under umask 022), shared by
    the test files that only need a finished run (test_cli, test_faults): (folder, exit code, stdout,
    eval.json as first written). Copy it before changing it."""
    from ltnas.cli import main

    base = tmp_path_factory.mktemp("finished")
    config = base / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_RUN, sort_keys=False))
    folder = base / "run"
    out, err = io.StringIO(), io.StringIO()
    mask = os.umask(0o022)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["run", str(config), "--out", str(folder)])
    finally:
        os.umask(mask)
    assert code == 0, err.getvalue()
    return folder, code, out.getvalue(), json.loads((folder / "eval.json").read_text())


class Killed(Exception):
    """Raised in place of a kill -9, after a search epoch has been checkpointed."""


def search_killed_and_resumed(config, folder: Path, monkeypatch, after_epoch: int = 1) -> None:
    """Search in `folder`, stopped right after epoch `after_epoch` (0-based) was checkpointed, as a
    killed process would be, then resumed to the end from the run folder alone (its saved config)."""
    from ltnas import pipeline
    from ltnas.runs import RunFolder
    from ltnas.search.task import SearchTask

    original = SearchTask.after_epoch

    def interrupt(self, epoch, epoch_folder):
        original(self, epoch, epoch_folder)
        if epoch == after_epoch:
            raise Killed

    monkeypatch.setattr(SearchTask, "after_epoch", interrupt)
    with pytest.raises(Killed):
        pipeline.search_only(config, RunFolder.create(folder, config))
    monkeypatch.setattr(SearchTask, "after_epoch", original)
    run = RunFolder.open(folder)
    pipeline.search_only(run.config(), run)


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, ended but not yet reaped by its new parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def nchw_layer_calls(step) -> list[tuple[str, list[tuple[int, ...]]]]:
    """The layer calls of `step()` that see an activation or gradient out of channels_last memory, on the CPU the
    library's slow paths: a convolution given an NCHW tensor (a strided slice it copies at no extra cost), a BatchNorm,
    a ReLU's backward or a pooling's backward given an NCHW tensor or a strided slice, such as a channel
    concatenation's backward hands on (BatchNorm's backward 3–12× slower, a ReLU's up to 20×). A tensor of one
    channel or one pixel is both layouts at once and passes; filters are not looked at. Returns (operator, those
    tensors' shapes) per call."""
    from torch.utils._python_dispatch import TorchDispatchMode

    def nchw_only(t) -> bool:
        return isinstance(t, torch.Tensor) and t.dim() == 4 and t.is_contiguous() and not t.is_contiguous(
            memory_format=torch.channels_last)

    def not_nhwc(t) -> bool:
        return isinstance(t, torch.Tensor) and t.dim() == 4 and not t.is_contiguous(memory_format=torch.channels_last)

    calls = []
    strict = ("batch_norm", "threshold_backward", "pool2d_with_indices_backward", "avg_pool2d_backward")

    class Layouts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            activations = args[:1] if name == "convolution" else args[:2]  # not the filters
            off = not_nhwc if any(kind in name for kind in strict) else nchw_only if "convolution" in name else None
            if off is not None and any(off(a) for a in activations):
                calls.append((name, [tuple(a.shape) for a in activations if off(a)]))
            return func(*args, **(kwargs or {}))

    with Layouts():
        step()
    return calls

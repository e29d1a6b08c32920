"""The shared epoch loop: resume, metrics log, atomic checkpoint each epoch, progress.

A *task* (search, retrain, ...) says what an epoch does; `fit` owns everything around it, so every
stage of ltnas survives a kill the same way:

    epoch k finishes → metrics row appended → task artefacts written → checkpoint (atomic)

On resume the checkpoint says how many epochs are done; log rows beyond that came from an epoch
whose checkpoint never landed, so they are dropped and that epoch is run again from the same state.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Iterator, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ltnas import distributed
from ltnas.atomic import atomic_save
from ltnas.errors import LtnasError
from ltnas.train.checkpoint import load_checkpoint, rng_state, set_rng_state

OnStep = Callable[..., None]


class EpochTask(Protocol):
    name: str

    def steps_per_epoch(self) -> int: ...

    def run_epoch(self, epoch: int, on_step: OnStep) -> dict[str, Any]: ...

    def after_epoch(self, epoch: int, folder: Path) -> None: ...

    def truncate_history(self, folder: Path, epochs_done: int) -> None:
        """Drop per-epoch artefacts beyond `epochs_done` (written after the last checkpoint)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class JsonlLog:
    """One JSON object per line; rows are only ever appended, or truncated on resume."""

    def __init__(self, path: Path):
        self.path = path

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def append(self, row: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")

    def truncate(self, keep: int) -> None:
        rows = self.rows()
        if len(rows) > keep:
            self.path.write_text("".join(json.dumps(row) + "\n" for row in rows[:keep]))


class ProgressReporter:
    """A rich progress bar per stage (with ETA), or nothing when disabled."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None

    @contextmanager
    def stage(self, description: str, total: int, completed: int = 0) -> Iterator["ProgressReporter"]:
        if not self.enabled:
            yield self
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
            console=self.console, transient=False,
        )
        with self._progress:
            self._task = self._progress.add_task(description, total=total, completed=completed, status="")
            yield self
        self._progress = None

    def advance(self, steps: int = 1, **status: float) -> None:
        if self._progress is not None:
            text = "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in status.items())
            self._progress.update(self._task, advance=steps, status=text)


def fit(task: EpochTask, epochs: int, folder: Path, progress: ProgressReporter | None = None) -> list[dict]:
    """Run `task` for `epochs` epochs in `folder`, resuming from `folder/checkpoint.pt` if present.

    Under torchrun every rank runs the task (on its shard) but only rank 0 writes and shows progress.
    """
    main = distributed.is_main()
    progress = progress if progress is not None and main else ProgressReporter(enabled=False)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / "checkpoint.pt"
    log = JsonlLog(folder / "metrics.jsonl")
    start = 0
    if checkpoint.exists():
        state = load_checkpoint(checkpoint)
        task.load_state_dict(state["task"])
        set_rng_state(state["rng"])
        start = state["epoch"]
    if main:
        log.truncate(start)
        task.truncate_history(folder, start)

    steps = task.steps_per_epoch()
    with progress.stage(task.name, total=epochs * steps, completed=start * steps):
        for epoch in range(start, epochs):
            began = perf_counter()
            row = task.run_epoch(epoch, progress.advance)
            row = {"epoch": epoch + 1, **row, "seconds": perf_counter() - began}
            if not all(math.isfinite(v) for v in row.values() if isinstance(v, float)):
                raise LtnasError(
                    f"{task.name} diverged at epoch {epoch + 1} (non-finite loss); lower the learning rate or "
                    "gradient clip, then start again (the checkpoint of the last good epoch is kept)"
                )
            if main:
                log.append(row)
                task.after_epoch(epoch, folder)
                atomic_save({"epoch": epoch + 1, "task": task.state_dict(), "rng": rng_state()}, checkpoint)
    distributed.barrier()  # the other ranks read what rank 0 wrote
    return log.rows()

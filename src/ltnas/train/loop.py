"""The shared epoch loop: resume, metrics log, atomic checkpoint each epoch, progress.

A *task* (search, retrain, ...) says what an epoch does; `fit` owns everything around it, so every
stage of ltnas survives a kill the same way:

    epoch k finishes → metrics row appended → task artefacts written → checkpoint (atomic)

On resume the checkpoint says how many epochs are done; log rows beyond that came from an epoch
whose checkpoint never landed, so they are dropped and that epoch is run again from the same state.

A task may stop early (a search's early-stopping rule, search.cures): its `stop` record, once set after an
epoch, is written to `stopped.json` before that epoch's checkpoint, which keeps it too, so a resumed run
ends where the uninterrupted one did.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any, Callable, Iterator, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ltnas import distributed, watch
from ltnas.atomic import atomic_save, atomic_write_text
from ltnas.errors import LtnasError, warn
from ltnas.train.checkpoint import damaged, load_checkpoint, rng_state, set_rng_state

OnStep = Callable[..., None]
STOP_FILE = "stopped.json"  # in a stage folder: why the stage ended before its last epoch


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
    """One JSON object per line; rows are only ever appended, or truncated on resume.

    A row is appended with one `write` of the whole line, so only a full disk or a kill inside that
    write can leave part of one: a torn last line is dropped with a warning (and removed on resume,
    whose checkpoint never counted that epoch); a damaged line before the last is a one-line error.
    """

    def __init__(self, path: Path):
        self.path = path

    def rows(self) -> list[dict]:
        return self._read()[0]

    def _read(self) -> tuple[list[dict], bool]:
        """(the rows, whether a torn last line was dropped)."""
        if not self.path.exists():
            return [], False
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:  # a torn multi-byte character is a torn line too
            lines = self.path.read_bytes().decode("utf-8", "replace").splitlines()
        rows, numbered = [], [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
        for index, (number, line) in enumerate(numbered):
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not an object")
            except ValueError:
                if index == len(numbered) - 1:
                    warn(f"{self.path} line {number} is cut short (a full disk or a kill while writing it); "
                         "ignoring it (a resume rewrites the log without it)")
                    return rows, True
                raise LtnasError(f"{self.path} line {number} is not a JSON row (damaged); restore the file or "
                                 "delete that line") from None
            rows.append(row)
        return rows, False

    def append(self, row: dict) -> None:
        data = (json.dumps(row) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            while data:  # one write for a regular file; the loop only guards a short write
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)

    def truncate(self, keep: int) -> None:
        """Keep the first `keep` rows (and drop a torn last line), rewriting the file atomically."""
        rows, torn = self._read()
        if len(rows) > keep or torn:
            atomic_write_text("".join(json.dumps(row) + "\n" for row in rows[:keep]), self.path)


# The validation metric shown per epoch: the first of these a task's metrics row has.
WATCHED_METRICS: tuple[tuple[str, str], ...] = (
    ("val_balanced_acc", "val balanced acc"), ("val_acc", "val acc"), ("best_fitness", "best fitness"),
)


def watched_metric(row: dict[str, Any]) -> tuple[str, float] | None:
    """(label, value) of the validation metric a progress line shows for `row`, if it has one."""
    for key, label in WATCHED_METRICS:
        if isinstance(row.get(key), (int, float)):
            return label, float(row[key])
    return None


def epoch_line(stage: str, epoch: int, epochs: int, row: dict[str, Any], seconds: float,
               eta: float | None) -> str:
    """One line per finished epoch, for logs: `search epoch 3/10  train loss 0.5123  val balanced acc
    61.20%  4.1s  eta 28.7s` (accuracies in percent; the ETA is the mean epoch time × epochs left)."""
    from ltnas.report.summary import format_seconds

    parts = [f"{stage} epoch {epoch}/{epochs}"]
    if isinstance(row.get("train_loss"), (int, float)):
        parts.append(f"train loss {row['train_loss']:.4f}")
    watched = watched_metric(row)
    if watched is not None:
        parts.append(f"{watched[0]} {100 * watched[1]:.2f}%")
    parts.append(format_seconds(seconds))
    if eta is not None:
        parts.append(f"eta {format_seconds(eta)}")
    return "  ".join(parts)


class ProgressReporter:
    """Progress of each stage: a rich bar (epochs, steps, ETA, train loss and the validation metric)
    on a terminal; one line per finished epoch when stderr is not a terminal (a log file, a pipe);
    nothing when disabled."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.lines = enabled and not self.console.is_terminal
        self._progress: Progress | None = None
        self._task = None
        self._epoch_text = ""
        self._step_text = ""

    @contextmanager
    def stage(self, description: str, total: int, completed: int = 0) -> Iterator["ProgressReporter"]:
        if not self.enabled or self.lines:
            yield self
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description:<8}"), TextColumn("{task.fields[epoch]}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"), console=self.console, transient=False,
        )
        self._epoch_text = self._step_text = ""
        with self._progress:
            self._task = self._progress.add_task(description, total=total, completed=completed, status="",
                                                 epoch="")
            yield self
        self._progress = None

    def advance(self, steps: int = 1, **status: float) -> None:
        if self._progress is not None:
            self._step_text = "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in status.items())
            self._progress.update(self._task, advance=steps, status=self._status())

    def epoch_done(self, stage: str, epoch: int, epochs: int, row: dict[str, Any], eta: float | None) -> None:
        """After each epoch: a log line (not a terminal), or the bar's epoch and validation metric."""
        if not self.enabled:
            return
        if self.lines:
            self.console.print(epoch_line(stage, epoch, epochs, row, row.get("seconds", 0.0), eta),
                               highlight=False, markup=False, soft_wrap=True)
            return
        if self._progress is not None:
            watched = watched_metric(row)
            self._epoch_text = f"{watched[0]} {100 * watched[1]:.2f}%" if watched else ""
            self._progress.update(self._task, epoch=f"epoch {epoch}/{epochs}", status=self._status())

    def _status(self) -> str:
        return "  ".join(text for text in (self._step_text, self._epoch_text) if text)


def diverged(stage: str, epoch: int) -> str:
    """What a divergence means and what works: a resume would replay the same config (and diverge
    again), so the fix is a new run with a lower learning rate."""
    section = stage if stage in ("search", "train", "supernet", "adapt") else None
    keys = f"{section}.sgd.lr or {section}.sgd.grad_clip" if section else "the learning rate or gradient clip"
    return (f"{stage} diverged at epoch {epoch} (non-finite loss); a resume would diverge again (a run keeps its "
            f"config): start a new run with a lower {keys} (e.g. --set {section or 'search'}.sgd.lr=...) and a new --out")


def fit(task: EpochTask, epochs: int, folder: Path, progress: ProgressReporter | None = None) -> list[dict]:
    """Run `task` for `epochs` epochs in `folder`, resuming from `folder/checkpoint.pt` if present.

    Under torchrun every rank runs the task (on its shard) but only rank 0 writes and shows progress.
    """
    main = distributed.is_main()
    progress = progress if progress is not None and main else ProgressReporter(enabled=False)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / "checkpoint.pt"
    log = JsonlLog(folder / "metrics.jsonl")
    start, stopped = 0, None
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, keys=("epoch", "task", "rng"))
        try:
            task.load_state_dict(state["task"])
            set_rng_state(state["rng"])
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise LtnasError(damaged(checkpoint, exc.__class__.__name__, f"does not fit this {task.name} stage "
                                     "(another architecture or settings)")) from None
        start, stopped = state["epoch"], state.get("stopped")
    if main:
        log.truncate(start)
        task.truncate_history(folder, start)
        if stopped is None:  # written by an epoch whose checkpoint never landed
            (folder / STOP_FILE).unlink(missing_ok=True)

    steps = task.steps_per_epoch()
    session_seconds = 0.0  # epochs run in this process, for the ETA
    with progress.stage(task.name, total=epochs * steps, completed=start * steps):
        for epoch in range(start, epochs if stopped is None else start):
            began = perf_counter()
            row = task.run_epoch(epoch, progress.advance)
            row = {"epoch": epoch + 1, **row, "seconds": perf_counter() - began}
            session_seconds += row["seconds"]
            if not all(math.isfinite(v) for v in row.values() if isinstance(v, float)):
                raise LtnasError(diverged(task.name, epoch + 1))
            stopped = getattr(task, "stop", None)
            if main:
                log.append(row)
                task.after_epoch(epoch, folder)
                if stopped is not None:
                    atomic_write_text(json.dumps(stopped, indent=1) + "\n", folder / STOP_FILE)
                atomic_save({"epoch": epoch + 1, "task": task.state_dict(), "rng": rng_state(), "stopped": stopped},
                            checkpoint)
                eta = session_seconds / (epoch + 1 - start) * (epochs - epoch - 1)
                progress.epoch_done(task.name, epoch + 1, epochs, row, None if stopped else eta)
                watch.log_epoch(task, folder, row)
                if stopped is not None and progress.enabled:
                    progress.console.print(f"{task.name} stopped early after epoch {epoch + 1}: {stopped['reason']}",
                                           highlight=False, markup=False, soft_wrap=True)
            if stopped is not None:
                break
    distributed.barrier()  # the other ranks read what rank 0 wrote
    return log.rows()

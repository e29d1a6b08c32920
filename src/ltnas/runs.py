"""Run folders: where a run lives, how it is created (never over another) and reopened."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import yaml

from ltnas import lock
from ltnas.config import RunConfig, drw_warnings, validate_config
from ltnas.errors import DiskFull, LtnasError, os_error, warn
from ltnas.atomic import atomic_write_text

if TYPE_CHECKING:  # torch is imported where a device is needed: --help, configs and bad arguments go without it
    import torch


class RunFolder:
    """RUN/config.yaml, data.json, search/, train/, eval.json, report.md, plots/."""

    def __init__(self, path: str | Path, created: tuple[Path, ...] = ()):
        self.path = Path(path)
        self._created = created  # folders this process made for a new run, deepest last

    search = property(lambda self: self.path / "search")
    train = property(lambda self: self.path / "train")
    config_file = property(lambda self: self.path / "config.yaml")

    @classmethod
    def create(cls, path: str | Path | None, config: RunConfig) -> "RunFolder":
        """A new run folder holding the resolved config; refuses a folder that already holds anything.

        The folder is claimed (`ltnas.lock`) before it is checked and written, and held for the life
        of the process: of two processes given the same --out, one gets it and the other is told who
        has it; neither writes into the other's run.
        """
        path = Path(path) if path else default_run_path(config.name)
        if path.exists() and not path.is_dir():
            raise LtnasError(f"--out {path} is a file, not a folder; choose another --out")
        if path.is_dir() and _contents(path):
            if (path / lock.LOCK_NAME).exists() and not lock.holds(path):  # say who holds it, if anyone does
                lock.claim(path).release()
            raise _exists(path)
        missing = [folder for folder in (path, *path.parents) if not folder.exists()][::-1]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LtnasError(f"cannot write to output folder {path} ({exc.strerror}); choose a writable --out") from None
        claimed = lock.claim(path)
        if _contents(path):  # another process created it between our look and our lock
            claimed.release()
            raise _exists(path)
        try:
            atomic_write_text(saved_yaml(config), path / "config.yaml")
        except LtnasError:
            claimed.release()
            raise
        for message in drw_warnings(config):
            warn(message)
        return cls(path, created=tuple(missing))

    @classmethod
    def open(cls, path: str | Path) -> "RunFolder":
        run = cls(path)
        if not run.config_file.is_file():
            raise LtnasError(
                f"{run.path} holds no ltnas run (no config.yaml); start one with `ltnas run CONFIG --out {run.path}`"
            )
        return run

    def claim(self) -> "RunFolder":
        """Hold this folder for this process (see `ltnas.lock`); one line naming the holder if another has it.
        Under torchrun the ranks of one run work in one folder together: rank 0 holds it for them."""
        if int(os.environ.get("RANK", "0")) == 0:
            lock.claim(self.path)
        return self

    def has_started(self) -> bool:
        """Whether any stage has written here: anything besides config.yaml, data.json and empty
        folders (a stage that failed in its first epoch, e.g. diverged, leaves only its folder)."""
        return any(not (self.path / name).is_dir() or any((self.path / name).iterdir())
                   for name in _contents(self.path) - {"config.yaml", "data.json"})

    def discard_if_unstarted(self) -> None:
        """Undo a new run that failed before any stage wrote to it (e.g. the data was missing), so
        that fixing the problem and running the same command again just works. Only what this
        process created goes: a folder the user made beforehand stays."""
        if not self.path.is_dir() or self.has_started():
            return
        for name in ("config.yaml", "data.json"):
            (self.path / name).unlink(missing_ok=True)
        for name in _contents(self.path):  # empty stage folders
            (self.path / name).rmdir()
        lock.release(self.path)
        for folder in reversed(self._created):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def config(self) -> RunConfig:
        try:
            raw = yaml.safe_load(self.config_file.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            raise LtnasError(f"{self.config_file} is not valid YAML; restore it or start a new run") from None
        if isinstance(raw, dict) and isinstance(raw.get("train"), dict):
            # Saved before train.val_fraction existed: that run retrained on every training image.
            raw["train"].setdefault("val_fraction", 0.0)
        return validate_config(raw, source=str(self.config_file))

    def write_json(self, name: str, data: dict) -> Path:
        path = self.path / name
        atomic_write_text(json.dumps(data, indent=1) + "\n", path)
        return path

    def read_json(self, name: str) -> dict | None:
        path = self.path / name
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise LtnasError(f"{path} is damaged (not JSON); delete it and ltnas writes it again from the "
                             "run's config") from None


def _contents(path: Path) -> set[str]:
    """Names in a folder, leaving out the lock file."""
    return {p.name for p in path.iterdir()} - {lock.LOCK_NAME}


def _exists(path: Path) -> LtnasError:
    return LtnasError(f"run folder {path} already exists and is not empty; continue it with --resume {path}, "
                      "or choose another --out")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in a run, carrying the line that says how to continue it."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill PID`, a job scheduler ending the job), raised where the process stands so that a run stops
    as on Ctrl-C: its last finished epoch kept, its folder's lock let go, the way to continue it said."""


@contextmanager
def stopping_on_sigterm() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` in the main thread instead of ending the process on the spot
    (which says nothing, and left a comparison's worker processes running on their own); the handler before is
    put back after. Off the main thread (where Python cannot set handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def resume_advice(path: Path, command: str, discard: "RunFolder | None" = None) -> Iterator[None]:
    """Say how to continue the run in `path` (`command --resume path`) when it stops on Ctrl-C or on a
    full disk, and turn a read-only folder into one line. `discard`: a new run, removed if it failed
    before any stage wrote to it."""
    resume = f"`{command} --resume {path}`"
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the last finished epoch is kept: continue with {resume}") from None
    except (LtnasError, OSError) as exc:
        error = exc if isinstance(exc, LtnasError) else os_error(exc)
        if error is None:
            raise
        if discard is not None:
            discard.discard_if_unstarted()
        if isinstance(error, DiskFull) and (path / "config.yaml").is_file():
            raise DiskFull(f"{error}; after freeing space, {resume} continues from the last completed "
                           "epoch") from None
        raise error from None


# Sections only some methods read (ltnas.methods.OPTIONAL_SECTIONS). A saved config leaves out those its
# run does not use *and* that hold their defaults; loading it fills them with the same defaults again,
# so the run resumes and evaluates as before (a section someone set, e.g. `supernet` for `ltnas supernet
# train` with another method, stays). `version` says which ltnas wrote it.
def saved_yaml(config: RunConfig) -> str:
    """The config a run folder keeps: what its method uses, plus seed, device and the ltnas version.

    Left out when at their defaults: the optional sections the method does not read (its entry in
    ltnas.methods: IMB-NAS's sections, `search.ssl` unless SSF-NAS, `search.bbn` unless the BBN search),
    `train` when nothing is retrained (the BBN search, `eval.model: supernet`). Always left out:
    `published` (a comparison reads it from the config file, never from a run folder)."""
    from ltnas import __version__
    from ltnas.methods import OPTIONAL_SECTIONS, method as method_entry

    raw = config.model_dump(mode="json")
    method = config.search.method
    defaults = RunConfig.model_validate({"search": {"method": method}}).model_dump(mode="json")
    reads = method_entry(method).reads(config)
    unused = [tuple(section.split(".")) for section in OPTIONAL_SECTIONS if section not in reads]
    for path in unused:
        parent, default = raw, defaults
        for key in path[:-1]:
            parent, default = parent[key], default[key]
        if parent.get(path[-1]) == default.get(path[-1]):
            parent.pop(path[-1], None)
    raw.pop("published", None)
    raw["version"] = __version__
    return yaml.safe_dump(raw, sort_keys=False)


def default_run_path(name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path("runs") / f"{name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path("runs") / f"{name}-{stamp}-{suffix}"
    return path


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an explicit device must exist."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LtnasError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LtnasError(f"device '{name}' requested but torch sees no CUDA GPU; use --device cpu (or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise LtnasError(f"device '{name}' does not exist ({torch.cuda.device_count()} GPUs); pick another index")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise LtnasError(f"device '{name}' requested but MPS is not available here; use --device cpu (or auto)")
    return device


def use_channels_last(setting: bool | None, device: torch.device, what: str) -> bool:
    """NHWC memory layout for `what` on `device`: the setting when given, else the CPU only.

    On the CPU channels_last is the faster layout for these small convolutions (same values). On an
    H100 it was slower for both search and retraining, and cuDNN's NHWC backward gave the affine-free
    supernet float32 gradients 40 % away from the float64 answer (NCHW: 0.1 %, as the CPU), so CUDA
    and MPS run NCHW unless told otherwise, and asking for NHWC supernets on CUDA earns a warning.
    """
    if setting is None:
        return device.type == "cpu"
    if setting and device.type == "cuda" and what == "search.channels_last":
        print(f"ltnas: warning: {what}=true on CUDA: cuDNN's channels_last backward gave wrong supernet gradients on "
              "an H100 (benchmarks/RESULTS.md); unset it to run NCHW", file=sys.stderr)
    return setting

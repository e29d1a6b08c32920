"""Checkpoints and the random state that make a resumed run equal an uninterrupted one."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ltnas.errors import LtnasError


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu", keys: tuple[str, ...] = ()) -> dict:
    """A checkpoint written by ltnas; a truncated, empty or foreign file (or one without `keys`) is a
    one-line LtnasError that leaves the file where it is."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except OSError:
        raise
    except Exception as exc:  # torch raises many kinds for a damaged file (EOFError, RuntimeError, pickle errors)
        raise LtnasError(damaged(path, _reason(exc))) from None
    missing = [key for key in keys if not isinstance(state, dict) or key not in state]
    if missing:
        raise LtnasError(damaged(path, f"no {', '.join(missing)}"))
    return state


def load_model_state(module: torch.nn.Module, state: dict, path: str | Path) -> None:
    """`module.load_state_dict(state)`, with a checkpoint of another architecture as one line."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise LtnasError(damaged(path, _reason(exc), "does not fit this run's model")) from None


def damaged(path: str | Path, reason: str, what: str = "is damaged or not an ltnas checkpoint") -> str:
    return (f"{path} {what} ({reason}); restore it, or delete it and continue the run with --resume, "
            "which redoes what it held")


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    first = first if len(first) <= 80 else first[:77] + "..."
    return f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__


def seed_everything(seed: int) -> None:
    """One seed drives Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

"""Files written atomically: a kill at any moment leaves the old file or the new one, never half.

Permissions: every file ltnas writes gets the mode an ordinary `open()` would give it, 0666 minus
the user's umask (0644 with the usual umask 022), whether it is written atomically (config.yaml,
eval.json, checkpoints: `mkstemp` alone would make them 0600) or directly (report.md, plots). One
policy, and the user's umask decides who may read a run.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from ltnas.errors import os_error


def file_mode() -> int:
    """0666 minus the process's umask: the mode `open()` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file in the same folder, flush it to disk, then rename over `path`.

    A kill at any moment leaves either the old file or the new one, never half of one. A full disk
    or an unwritable folder is a one-line `LtnasError` (`errors.os_error`), and the old file stays.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise (os_error(exc, path) or exc) from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        user = os_error(exc, path)
        if user is None:
            raise
        raise user from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: str | Path) -> None:
    import torch  # here: the text writers serve commands that never load torch

    with atomic_file(path, "wb") as handle:
        try:
            torch.save(obj, handle)
        except RuntimeError as exc:  # torch's writer reports a failed write (a full disk) as RuntimeError
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise


def atomic_write_text(text: str, path: str | Path) -> None:
    with atomic_file(path, "w") as handle:
        handle.write(text)

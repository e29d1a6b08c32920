"""The one exception type users see.

Anything a user can fix (a missing file, a misspelt name, an impossible setting) is raised as
`LtnasError` with a message that names the problem *and* the fix. The CLI prints that one line
and exits with code 2; everything else is a bug and keeps its traceback.

A full disk and a read-only folder are the user's to fix too: `os_error` turns those `OSError`s
into one line; everything else stays a bug.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path


class LtnasError(Exception):
    """A problem with the user's input, stated as 'what is wrong; how to fix it'."""

    exit_code = 2


class DiskFull(LtnasError):
    """No space left while writing; files written before (checkpoints included) are intact."""


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def os_error(exc: OSError, path: str | Path | None = None) -> LtnasError | None:
    """The one-line error for a full disk or an unwritable place, or None for any other OSError."""
    path = path if path is not None else exc.filename
    if exc.errno in _NO_SPACE:
        return DiskFull(f"no space left on the device writing {path}; free some space (every file written "
                        "before, checkpoints included, is intact)")
    if exc.errno in _NOT_WRITABLE:
        folder = Path(path).parent if path is not None else "the folder"
        return LtnasError(f"cannot write {path} ({exc.strerror}); make {folder} writable, or copy the run "
                          "folder somewhere writable and work on the copy")
    return None


_WARNED: set[str] = set()


def warn(message: str) -> None:
    """One line `ltnas: warning: ...` on stderr, once per message and process."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"ltnas: warning: {message}", file=sys.stderr)

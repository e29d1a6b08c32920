"""One process per folder: a run folder (or comparison, or supernet cache entry) is held by a lock
for the life of the process that works in it.

The lock is `FOLDER/.lock`, holding the holder's PID, with an exclusive `flock` on it. The kernel
drops a `flock` when its process ends however it ends (kill -9 included), so a lock file left by a
killed run is stale and simply taken over: it never blocks a resume. A process that finishes (or
fails) removes the file; the file is unlinked only while locked and a taker checks that the file it
locked is still the one at the path, so an unlink can never let two processes in.

Locks are re-entrant within a process (asking again for a folder this process holds returns the
same lock), so the CLI's in-process callers and tests can reopen their own folders.
"""

from __future__ import annotations

import atexit
import errno
import os
from pathlib import Path

from ltnas.errors import LtnasError

try:
    import fcntl
except ImportError:  # Windows: no flock; folders are then not guarded against a second process
    fcntl = None

LOCK_NAME = ".lock"

_HELD: dict[str, "FolderLock"] = {}


class FolderBusy(LtnasError):
    """Another live process holds the folder."""


class FolderLock:
    def __init__(self, folder: Path, fd: int):
        self.folder = folder
        self._fd: int | None = fd

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def release(self) -> None:
        """Remove the lock file (still holding the lock) and let go."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:  # gone already, or the folder became read-only: the lock still ends with the fd
            pass
        os.close(self._fd)
        self._fd = None
        _HELD.pop(_key(self.folder), None)


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def claim(folder: str | Path, what: str = "run folder") -> FolderLock:
    """Hold `folder` for this process, or raise FolderBusy naming the process that holds it.

    `folder` must exist. A stale lock file of a dead process is taken over.
    """
    folder = Path(folder)
    held = _HELD.get(_key(folder))
    if held is not None:
        return held
    path = folder / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise LtnasError(f"cannot lock {what} {folder} ({exc.strerror}); make it writable "
                             f"(ltnas writes {LOCK_NAME} there while it works)") from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = f"PID {pid}" if pid else "another process"
            raise FolderBusy(f"{what} {folder} is in use by another ltnas process ({holder}); wait for it to "
                             "finish or stop it, then try again (a stopped process's lock goes with it)") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder removed the file between our open and our lock: take the new one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        lock = FolderLock(folder, fd)
        _HELD[_key(folder)] = lock
        return lock


def holds(folder: str | Path) -> bool:
    """True when this process holds `folder`."""
    return _key(Path(folder)) in _HELD


def release(folder: str | Path) -> None:
    lock = _HELD.get(_key(Path(folder)))
    if lock is not None:
        lock.release()


def release_all() -> None:
    """Let go of every folder this process holds (the CLI calls this when a command ends)."""
    for lock in list(_HELD.values()):
        lock.release()


atexit.register(release_all)  # a process that ends normally leaves no lock file behind


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

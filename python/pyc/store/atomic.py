"""Atomic, durable writes: a temp file beside the target, fsync, rename, fsync the directory."""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


def write_file(path: str, data: bytes, durable: bool = True, mode: int = 0o644) -> None:
    """Readers see the old or the new content, never a mix. `durable=False` skips the syncs, for
    state that a reboot makes moot anyway (a container's run state)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    if durable:
        sync_dir(os.path.dirname(path))


def temp_beside(out: str) -> str:
    """A hidden temp name in `out`'s directory (the same filesystem, so a rename moves it in)."""
    return os.path.join(os.path.dirname(os.path.abspath(out)), f".{os.path.basename(out)}.tmp-{os.getpid()}")


def write_through(out: str, write: Callable[[int], T], mode: int = 0o644) -> T:
    """Call `write` with the fd of a temp file beside `out` (made with `mode`), then sync and
    rename it into place: `out` is whole or untouched. Returns what `write` returned."""
    tmp = temp_beside(out)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            result = write(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    sync_dir(os.path.dirname(os.path.abspath(out)))
    return result


def sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_held: dict[str, int] = {}


class locked:
    """An exclusive flock on `path` (`shared`: a shared one), held for the block: how concurrent
    pyc commands take turns. Re-entrant within the process, so a step that takes the lock can
    run inside another. A class, not @contextmanager: contextlib is not worth its import time
    on the run path."""

    def __init__(self, path: str, shared: bool = False) -> None:
        self.path = path
        self.owner = False
        self.mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX

    def __enter__(self) -> None:
        if self.path in _held:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, self.mode)
        except BaseException:
            os.close(fd)
            raise
        _held[self.path] = fd
        self.owner = True

    def __exit__(self, *exc: object) -> None:
        if self.owner:
            os.close(_held.pop(self.path))
            self.owner = False

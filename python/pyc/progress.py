"""Progress bars for the long store operations (load, save, import, commit): one line per layer
with bytes done, drawn by rich on stderr. Off unless the CLI asks for them (`bars`) and
stderr is a terminal; rich (~50 ms to import) is imported only then, never on the `pyc run` path."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from typing import Any

_bar: Any = None  # a started rich.progress.Progress while bars are on


class bars:
    """Draw bars for the block, if stderr is a terminal: the CLI verbs that take long run their
    work inside it and print their results after, so stdout gets only the results."""

    def __enter__(self) -> None:
        global _bar
        if _bar is not None or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        _bar = Progress(*columns, console=Console(stderr=True), redirect_stdout=False)
        _bar.start()

    def __exit__(self, *exc: object) -> None:
        global _bar
        if _bar is not None:
            _bar.stop()
            _bar = None


class task:
    """One bar, for the block: `advance(n)` adds bytes; or `poll`, a function returning the bytes
    done so far, is read ten times a second by a thread (for work done in Rust, which Python
    cannot see but through a file offset or size). A no-op when bars are off."""

    def __init__(self, name: str, total: int | None, poll: Callable[[], int | None] | None = None) -> None:
        self.name, self.total, self.poll = name, total, poll
        self.id: Any = None
        self.stop: threading.Event | None = None  # made when a bar is drawn (threading is not free to import)
        self.thread: threading.Thread | None = None

    def __enter__(self) -> task:
        if _bar is not None:
            self.id = _bar.add_task(self.name, total=self.total)
            if self.poll is not None:
                self.watch(self.poll)
        return self

    def watch(self, poll: Callable[[], int | None]) -> None:
        """Follow `poll` from now on (see the class)."""
        self.poll = poll
        if self.id is not None and self.thread is None:
            import threading

            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._watch, daemon=True)
            self.thread.start()

    def advance(self, n: int) -> None:
        if self.id is not None:
            _bar.advance(self.id, n)

    def _watch(self) -> None:
        assert self.poll is not None and self.stop is not None
        while not self.stop.wait(0.1):
            done = self.poll()
            if done is not None:
                _bar.update(self.id, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.id is None:
            return
        if self.stop is not None and self.thread is not None:
            self.stop.set()
            self.thread.join()
        if exc[0] is None:  # done: a full bar, of the final size when it was not known before
            last = self.poll() if self.poll is not None else None
            done = self.total if self.total is not None else last if last is not None else _bar.tasks[self.id].completed
            _bar.update(self.id, completed=done, total=done)


def offset(fd: int) -> Callable[[], int | None]:
    """A poll for `task`: how far a reader sharing `fd`'s file offset has got."""

    def get() -> int | None:
        try:
            return os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            return None

    return get


def file_size(path: str) -> Callable[[], int | None]:
    """A poll for `task`: how much has been written to `path`."""

    def get() -> int | None:
        try:
            return os.stat(path).st_size
        except OSError:
            return None

    return get
